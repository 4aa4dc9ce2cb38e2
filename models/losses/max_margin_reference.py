"""HowTo100M's max-margin loss with its exact weighting (`loss.py`): a fixed layout of B videos x P captions."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def reference_mask(videos: int, per_video: int, hard_negative_rate: float = 0.5) -> torch.Tensor:
    """W = kron((1 - a) I_B + a 1_B, 1_P) * B * h, a = (1 - h) / ((B - 1) h), h = hard_negative_rate.

    With h = 0.5 a same-video entry weighs B/2 (16 at B = 32) and a cross-video one B / (2(B - 1))
    (16/31), so same-video entries carry half the mass of each row; the diagonal is included.
    """
    h = hard_negative_rate
    alpha = (1 - h) / (max(videos - 1, 1) * h)
    block = (1 - alpha) * torch.eye(videos, dtype=torch.float64) + alpha
    return torch.kron(block, torch.ones(per_video, per_video, dtype=torch.float64)) * videos * h


class ReferenceMaxMarginLoss(nn.Module):
    """L = mean_{i,j} W_ij [relu(m + s_ij - s_ii) + relu(m + s_ij - s_jj)],  s = texts x videos.

    Every entry of the (B*P)^2 matrix counts, the diagonal too (a constant 2m W_ii); W is
    `reference_mask`. Rows must come video by video with P captions each (`groups` gives B); P = 1
    or `negative_weighting=False` means W = 1, as in the reference.
    """

    def __init__(
        self, margin: float = 0.1, hard_negative_rate: float = 0.5, negative_weighting: bool = True
    ) -> None:
        super().__init__()
        self.margin = margin
        self.hard_negative_rate = hard_negative_rate
        self.negative_weighting = negative_weighting

    def forward(
        self, sim: torch.Tensor, groups: torch.Tensor, order: torch.Tensor | None = None
    ) -> torch.Tensor:
        n = sim.shape[0]
        videos = int(groups.unique().numel())
        blocks = groups.view(videos, -1) if n % videos == 0 else None
        if blocks is None or not (blocks == blocks[:, :1]).all():
            raise ValueError("ReferenceMaxMarginLoss needs rows grouped video by video, P rows each")
        d = sim.diagonal()
        hinge = F.relu(self.margin + sim - d.view(-1, 1)) + F.relu(self.margin + sim - d.view(1, -1))
        if self.negative_weighting and n // videos > 1:
            hinge = hinge * reference_mask(videos, n // videos, self.hard_negative_rate).to(sim)
        return hinge.mean()
