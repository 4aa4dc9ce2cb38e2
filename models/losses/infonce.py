"""Symmetric InfoNCE with a fixed temperature (CLIP / VideoCLIP style)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from models.losses.temperature import TemperatureLoss


class SymmetricInfoNCE(TemperatureLoss):
    """Mean of text->video and video->text cross-entropy over the batch, the diagonal being positive."""

    def forward(
        self, sim: torch.Tensor, groups: torch.Tensor | None = None, order: torch.Tensor | None = None
    ) -> torch.Tensor:
        logits = sim / self.temperature
        target = torch.arange(sim.shape[0], device=sim.device)
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
