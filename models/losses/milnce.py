"""MIL-NCE as published (Miech et al. 2020): one clip per video, a bag of K captions as its positives."""

from __future__ import annotations

import torch

from models.losses.temperature import TemperatureLoss


class MILNCELoss(TemperatureLoss):
    """L = mean_i [ logsumexp_{j,k} {x_ijk} u {x_jik}  -  logsumexp_k x_iik ],  x_ijk = v_i . t_jk / tau.

    `sim` is (B*K texts x B videos): text j*K + k is caption k of video j's bag, so the batch holds B
    clips of B distinct videos. The denominator is the reference's: clip i against every caption of the
    batch, plus every clip against clip i's captions; the positives x_iik sit in both halves, so they
    are counted twice. The reference has raw dot products (no L2, no temperature); our gated units
    L2-normalise, so similarities are divided by `temperature`.
    """

    def forward(
        self, sim: torch.Tensor, groups: torch.Tensor | None = None, order: torch.Tensor | None = None
    ) -> torch.Tensor:
        videos = sim.shape[1]
        x = (sim.t() / self.temperature).reshape(videos, videos, -1)  # (clip i, video j, caption k)
        eye = torch.eye(videos, dtype=torch.bool, device=sim.device)
        numerator = torch.logsumexp(x[eye], dim=1)  # x[i, i, :]
        denominator = torch.logsumexp(torch.cat((x, x.transpose(0, 1)), dim=1).reshape(videos, -1), dim=1)
        return (denominator - numerator).mean()
