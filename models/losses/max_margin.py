"""HowTo100M's bidirectional max-margin ranking loss with same-video negative weighting."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.cpu_kernels import compiled_kernel, run_kernel


def same_video(groups: torch.Tensor) -> torch.Tensor:
    """(N x N) bool: True where clips i and j come from one video (the diagonal included)."""
    return groups.view(-1, 1) == groups.view(1, -1)


def negative_shares(same: torch.Tensor, weighting: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) weight of each same-video negative and (N,) weight of each other-video negative of every
    anchor row, from the `same_video` mask: the two values `negative_weights` spreads over a row."""
    return shares_from_counts(same.sum(1).float() - 1, same.shape[0], weighting)


def shares_from_counts(
    n_same: torch.Tensor, n: int, weighting: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """`negative_shares` from each anchor's count of same-video negatives (float, the anchor left out)."""
    if not weighting:
        uniform = torch.ones(n, device=n_same.device) / max(n - 1, 1)
        return uniform, uniform
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


LOW_PRECISION = (torch.bfloat16, torch.float16)


def max_margin_and_gradient(
    sim: torch.Tensor,
    video: torch.Tensor,
    slack: torch.Tensor,
    same_share: torch.Tensor,
    other_share: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The loss (float32), its gradient with respect to `sim` off the diagonal (in sim's dtype) and the
    (N,) float32 sums that make the diagonal, in one function of plain tensor ops for a compiled CPU
    kernel (models/cpu_kernels.py): the same terms as _RowMajorMaxMargin, float32 inside, the same-video
    and diagonal masks made on the fly from `video` (int32 video numbers) and indices, and the gradient
    rounded once to sim's dtype (bf16 in a bf16 step, as the matmuls' backward reads it).

    What is one number per anchor comes in as (N,) vectors (`anchor_terms`): each row's slack (margin -
    s_ii) and the two shares of its negatives, already divided by N. Computed inside, from the groups
    and the diagonal, Inductor redid them for every cell, the diagonal gathered value by value: at
    N=2048 on 2 Xeon cores 15.7 against 6.3 ms for the loss and its gradient (medians of 15), in a bf16
    step of about 450 ms. The diagonal of the gradient is minus `positives` (the weights are 0 there):
    `fused_max_margin` writes it, one rounding as before, so the bits are those of the single kernel."""
    n = sim.shape[0]
    s = sim.float()
    same = video.view(-1, 1) == video.view(1, -1)
    index = torch.arange(n, device=sim.device)
    diagonal = index.view(-1, 1) == index.view(1, -1)
    h1 = (s + slack.view(-1, 1)).clamp_min(0)  # m + s_ij - s_ii
    h2 = (s + slack.view(1, -1)).clamp_min(0)  # m + s_ij - s_jj
    zero = torch.zeros((), dtype=torch.float32, device=sim.device)
    w1 = torch.where(diagonal, zero, torch.where(same, same_share.view(-1, 1), other_share.view(-1, 1)))
    w2 = torch.where(diagonal, zero, torch.where(same, same_share.view(1, -1), other_share.view(1, -1)))
    loss = (w1 * h1).sum() + (w2 * h2).sum()
    g1 = torch.where(h1 > 0, w1, zero)  # relu' as torch's: 1 above 0, 0 at 0
    g2 = torch.where(h2 > 0, w2, zero)
    positives = g1.sum(1) + g2.sum(0)
    return loss, (g1 + g2).to(sim.dtype), positives


def anchor_terms(
    sim: torch.Tensor, groups: torch.Tensor, margin: float, weighting: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """max_margin_and_gradient's per-anchor inputs: (int32 video numbers, float32 slack, same-video share
    / N, other-video share / N), each (N,), from the groups' sizes (no N x N mask)."""
    n = sim.shape[0]
    _, video, sizes = torch.unique(groups, return_inverse=True, return_counts=True)
    same_share, other_share = shares_from_counts(sizes[video].float() - 1, n, weighting)
    slack = margin - torch.diagonal(sim).float()
    return video.to(torch.int32), slack, same_share / n, other_share / n  # / n: mean over anchors


def fused_max_margin(
    kernel: Callable[..., Any], sim: torch.Tensor, groups: torch.Tensor, margin: float, weighting: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss and its whole gradient through the compiled max_margin_and_gradient."""
    loss, grad, positives = run_kernel(kernel, sim, *anchor_terms(sim, groups, margin, weighting))
    grad.diagonal().copy_(positives.neg())  # rounded once to sim's dtype, as g1 + g2 - positives was
    return loss, grad


COMPILED_LOSS = "max-margin loss"


def compiled_loss(sim: torch.Tensor) -> Callable[..., Any] | None:
    """The compiled max_margin_and_gradient for a bf16 or fp16 CPU `sim` (a bf16 step's), or None (another
    device or dtype, or the compile failed). Weighting or not, one kernel: the shares come in."""
    if sim.device.type != "cpu" or sim.dtype not in LOW_PRECISION:
        return None

    def probe(kernel: Callable[..., Any]) -> None:
        # A batch's size, bf16 as a bf16 step passes it (models/cpu_kernels.py: sizes steer the compile).
        n = 1024
        vectors = [torch.zeros(n) for _ in range(3)]  # distinct, as in a step: aliasing is a guard too
        kernel(torch.zeros(n, n, dtype=torch.bfloat16), torch.zeros(n, dtype=torch.int32), *vectors)

    return compiled_kernel(COMPILED_LOSS, max_margin_and_gradient, probe)


class _RowMajorMaxMargin(torch.autograd.Function):
    """The max-margin loss with its gradient built in the forward pass, never reading s transposed.

    The second hinge summed over all (i, j) is, renaming i <-> j, sum_ij w_ji relu(m + s_ij - s_jj): the
    same cell s_ij against the column's positive, weighted by w transposed. w_ij takes one value per
    row for same-video cells and one for the others, so w^T is built from the same two vectors broadcast
    along the other axis. The (N x N) gradient is G = w [h1 > 0] + w^T [h2 > 0], and each positive s_ii
    gets minus its row's first part and its column's second part. About 17 passes over N x N floats
    against the autograd graph's ~40, several of them reading s.t() across rows: at N = 2048 on 2 cores,
    forward and backward 95 -> about 25 ms.

    With `kernel` (compiled_loss: a bf16 step's scores on a CPU), the same loss and gradient come from
    one compiled kernel that reads sim as it comes: no float32 copy of the N x N scores, and the gradient
    in bf16, where the float32 one was cast back for the matmuls' backward.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        sim: torch.Tensor,
        groups: torch.Tensor,
        margin: float,
        weighting: bool,
        kernel: Callable[..., Any] | None,
    ) -> torch.Tensor:
        if kernel is not None:
            loss, gradient = fused_max_margin(kernel, sim, groups, margin, weighting)
            ctx.save_for_backward(gradient)
            return loss  # type: ignore[no-any-return]
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
    ) -> tuple[torch.Tensor | None, None, None, None, None]:
        (grad,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return grad * upstream.to(grad.dtype), None, None, None, None


class MaxMarginRankingLoss(nn.Module):
    """mean_i sum_j w_ij [relu(m + s_ij - s_ii) + relu(m + s_ji - s_ii)], s = texts x videos.

    The first hinge ranks the true video above other videos for text i, the second ranks the true
    text above other texts for video i; w are `negative_weights`.

    `fused`: compute it with `_RowMajorMaxMargin`, the same loss and gradient in another order of
    arithmetic, about 5x faster at HowTo100M's batch; on a CPU as one compiled kernel
    (max_margin_and_gradient). The trainer takes it for bf16 steps, whose matmuls round far more than the
    order does; fp32 steps keep the autograd form, and so their bits.
    """

    def __init__(self, margin: float = 0.1, negative_weighting: bool = True, fused: bool = False) -> None:
        super().__init__()
        self.margin = margin
        self.negative_weighting = negative_weighting
        self.fused = fused

    @property
    def reads_low_precision(self) -> bool:
        """Whether a bf16 step may pass its bf16 similarities as they are (models/train_loop.py): the fused
        form reads them in float32 itself, compiled on a CPU without a float32 copy."""
        return self.fused

    def forward(
        self, sim: torch.Tensor, groups: torch.Tensor, order: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.fused and sim.shape[0] > 1:
            kernel = compiled_loss(sim)
            if kernel is None and sim.dtype in LOW_PRECISION:  # no kernel for it: float32 as before
                sim = sim.float()
            loss: torch.Tensor = _RowMajorMaxMargin.apply(
                sim, groups, self.margin, self.negative_weighting, kernel
            )
            return loss
        sim = sim.float() if sim.dtype in LOW_PRECISION else sim
        positive = sim.diagonal().view(-1, 1)
        hinge = F.relu(self.margin + sim - positive) + F.relu(self.margin + sim.t() - positive)
        weights = negative_weights(groups, self.negative_weighting).to(sim.dtype)
        return (weights * hinge).sum(1).mean()
