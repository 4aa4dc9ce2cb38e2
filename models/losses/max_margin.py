"""HowTo100M's bidirectional max-margin ranking loss with same-video negative weighting."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def same_video(groups: torch.Tensor) -> torch.Tensor:
    """(N x N) bool: True where clips i and j come from one video (the diagonal included)."""
    return groups.view(-1, 1) == groups.view(1, -1)


def negative_shares(same: torch.Tensor, weighting: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) weight of each same-video negative and (N,) weight of each other-video negative of every
    anchor row, from the `same_video` mask: the two values `negative_weights` spreads over a row."""
    n = same.shape[0]
    if not weighting:
        uniform = torch.ones(n, device=same.device) / max(n - 1, 1)
        return uniform, uniform
    n_same = same.sum(1).float() - 1  # without the anchor itself
    n_other = (n - 1) - n_same
    both = (n_same > 0) & (n_other > 0)
    share_same = torch.where(both, torch.full_like(n_same, 0.5), (n_same > 0).float())
    return share_same / n_same.clamp_min(1), (1 - share_same) / n_other.clamp_min(1)


def negative_weights(groups: torch.Tensor, weighting: bool = True) -> torch.Tensor:
    """(N x N) weights of the negatives of each anchor row; every row sums to 1, the diagonal is 0.

    With weighting, half of a row's mass goes to the clips of the anchor's own video and half to the
    other videos, each half spread evenly (the reference folds the positive into the same-video block;
    we leave it out so the halves are exactly the negatives). If an anchor has negatives of one kind
    only, that kind gets all the mass. Without weighting every negative weighs 1/(N-1).
    """
    same = same_video(groups)
    same_share, other_share = negative_shares(same, weighting)
    weights = torch.where(same, same_share.view(-1, 1), other_share.view(-1, 1))
    return weights.fill_diagonal_(0)  # the positive is no negative of itself


class _RowMajorMaxMargin(torch.autograd.Function):
    """The max-margin loss with its gradient built in the forward pass, never reading s transposed.

    The second hinge summed over all (i, j) is, renaming i <-> j, sum_ij w_ji relu(m + s_ij - s_jj): the
    same cell s_ij against the column's positive, weighted by w transposed. w_ij takes one value per
    row for same-video cells and one for the others, so w^T is built from the same two vectors broadcast
    along the other axis. The (N x N) gradient is G = w [h1 > 0] + w^T [h2 > 0], and each positive s_ii
    gets minus its row's first part and its column's second part. About 17 passes over N x N floats
    against the autograd graph's ~40, several of them reading s.t() across rows: at N = 2048 on 2 cores,
    forward and backward 95 -> about 25 ms.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        sim: torch.Tensor,
        groups: torch.Tensor,
        margin: float,
        weighting: bool,
    ) -> torch.Tensor:
        n = sim.shape[0]
        same = same_video(groups)
        same_share, other_share = (v / n for v in negative_shares(same, weighting))  # / n: mean over anchors
        slack = (margin - sim.diagonal()).to(sim.dtype)
        h1 = torch.add(sim, slack.view(-1, 1)).clamp_min_(0)  # m + s_ij - s_ii
        h2 = torch.add(sim, slack.view(1, -1)).clamp_min_(0)  # m + s_ij - s_jj
        w1 = torch.where(same, same_share.view(-1, 1), other_share.view(-1, 1)).to(sim.dtype)
        w2 = torch.where(same, same_share.view(1, -1), other_share.view(1, -1)).to(sim.dtype)
        w1.fill_diagonal_(0)  # the positive is no negative of itself
        w2.fill_diagonal_(0)
        loss = torch.dot(w1.view(-1), h1.view(-1)) + torch.dot(w2.view(-1), h2.view(-1))
        # relu' as torch's: 1 above 0, 0 at 0. sign_ + mul_: two plain passes (masked_fill_ was 3x slower).
        grad = w1.mul_(h1.sign_())
        w2.mul_(h2.sign_())
        positives = grad.sum(1) + w2.sum(0)
        grad.add_(w2).diagonal().sub_(positives)
        ctx.save_for_backward(grad)
        return loss

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, upstream: torch.Tensor
    ) -> tuple[torch.Tensor | None, None, None, None]:
        (grad,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return grad * upstream, None, None, None


class MaxMarginRankingLoss(nn.Module):
    """mean_i sum_j w_ij [relu(m + s_ij - s_ii) + relu(m + s_ji - s_ii)], s = texts x videos.

    The first hinge ranks the true video above other videos for text i, the second ranks the true
    text above other texts for video i; w are `negative_weights`.

    `fused`: compute it with `_RowMajorMaxMargin`, the same loss and gradient in another order of
    arithmetic, about 5x faster at HowTo100M's batch. The trainer takes it for bf16 steps, whose
    matmuls round far more than the order does; fp32 steps keep the autograd form, and so their bits.
    """

    def __init__(self, margin: float = 0.1, negative_weighting: bool = True, fused: bool = False) -> None:
        super().__init__()
        self.margin = margin
        self.negative_weighting = negative_weighting
        self.fused = fused

    def forward(
        self, sim: torch.Tensor, groups: torch.Tensor, order: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.fused and sim.shape[0] > 1:
            loss: torch.Tensor = _RowMajorMaxMargin.apply(sim, groups, self.margin, self.negative_weighting)
            return loss
        positive = sim.diagonal().view(-1, 1)
        hinge = F.relu(self.margin + sim - positive) + F.relu(self.margin + sim.t() - positive)
        weights = negative_weights(groups, self.negative_weighting).to(sim.dtype)
        return (weights * hinge).sum(1).mean()
