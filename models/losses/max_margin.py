"""HowTo100M's bidirectional max-margin ranking loss with same-video negative weighting."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def negative_weights(groups: torch.Tensor, weighting: bool = True) -> torch.Tensor:
    """(N x N) weights of the negatives of each anchor row; every row sums to 1, the diagonal is 0.

    With weighting, half of a row's mass goes to the clips of the anchor's own video and half to the
    other videos, each half spread evenly (the reference folds the positive into the same-video block;
    we leave it out so the halves are exactly the negatives). If an anchor has negatives of one kind
    only, that kind gets all the mass. Without weighting every negative weighs 1/(N-1).
    """
    n = groups.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=groups.device)
    same = (groups.view(-1, 1) == groups.view(1, -1)) & ~eye
    other = groups.view(-1, 1) != groups.view(1, -1)
    if not weighting:
        return (~eye).float() / max(n - 1, 1)
    n_same = same.sum(1, keepdim=True).float()
    n_other = other.sum(1, keepdim=True).float()
    both = (n_same > 0) & (n_other > 0)
    share_same = torch.where(both, torch.full_like(n_same, 0.5), (n_same > 0).float())
    w_same = same.float() * share_same / n_same.clamp_min(1)
    w_other = other.float() * (1 - share_same) / n_other.clamp_min(1)
    return w_same + w_other


class MaxMarginRankingLoss(nn.Module):
    """mean_i sum_j w_ij [relu(m + s_ij - s_ii) + relu(m + s_ji - s_ii)], s = texts x videos.

    The first hinge ranks the true video above other videos for text i, the second ranks the true
    text above other texts for video i; w are `negative_weights`.
    """

    def __init__(self, margin: float = 0.1, negative_weighting: bool = True) -> None:
        super().__init__()
        self.margin = margin
        self.negative_weighting = negative_weighting

    def forward(
        self, sim: torch.Tensor, groups: torch.Tensor, order: torch.Tensor | None = None
    ) -> torch.Tensor:
        positive = sim.diagonal().view(-1, 1)
        hinge = F.relu(self.margin + sim - positive) + F.relu(self.margin + sim.t() - positive)
        weights = negative_weights(groups, self.negative_weighting).to(sim.dtype)
        return (weights * hinge).sum(1).mean()
