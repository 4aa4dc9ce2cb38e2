"""TVTS (Zeng et al. 2023) adapted to stored features: contrastive pairs plus transcript sorting."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TVTSLoss(nn.Module):
    """L = L_con + lambda * L_sort.

    L_con = CE(S / tau, I) + CE(S^T / tau, I) over the (texts x videos) cosine matrix S of the batch's
    clips: TVTS's NormSoftmaxLoss (tau = 0.05), which **sums** its two directions (each a mean over the
    batch), unlike SymmetricInfoNCE's mean of the two. L_sort = mean over transcripts of
    -log softmax(z)_{y}, z the sorting head's logits of a transcript and y its chronological index in
    its window; lambda = 2 (TVTS's trainer: `loss1 + CE(...) * 2`). With the directions averaged the
    sorting term would weigh twice what the reference gives it against the contrastive one.
    """

    def __init__(self, temperature: float = 0.05, sort_weight: float = 2.0) -> None:
        super().__init__()
        self.temperature = temperature
        self.sort_weight = sort_weight

    def contrastive(self, sim: torch.Tensor) -> torch.Tensor:
        logits = sim / self.temperature
        target = torch.arange(sim.shape[0], device=sim.device)
        return F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)

    def forward(
        self, sim: torch.Tensor, sort_logits: torch.Tensor, sort_target: torch.Tensor
    ) -> torch.Tensor:
        sort = F.cross_entropy(sort_logits.reshape(-1, sort_logits.shape[-1]), sort_target.reshape(-1))
        return self.contrastive(sim) + self.sort_weight * sort
