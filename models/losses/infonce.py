"""Symmetric InfoNCE with a fixed temperature (CLIP / VideoCLIP style)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SymmetricInfoNCE(nn.Module):
    """Mean of text->video and video->text cross-entropy over the batch, the diagonal being positive."""

    def __init__(self, temperature: float = 0.07) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(
        self, sim: torch.Tensor, groups: torch.Tensor | None = None, order: torch.Tensor | None = None
    ) -> torch.Tensor:
        logits = sim / self.temperature
        target = torch.arange(sim.shape[0], device=sim.device)
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
