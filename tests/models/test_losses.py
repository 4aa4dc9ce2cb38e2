"""Each loss against a small case computed by hand, including same-video negative weighting."""

from __future__ import annotations

import math

import pytest
import torch

from models.losses import (
    InBatchMILNCELoss,
    MaxMarginRankingLoss,
    SymmetricInfoNCE,
    build_loss,
    negative_weights,
    neighbour_mask,
)

# texts x videos; clips 0 and 1 come from video A, clip 2 from video B.
SIM = torch.tensor([[0.9, 0.8, 0.1], [0.5, 0.6, 0.2], [0.3, 0.4, 0.7]])
GROUPS = torch.tensor([0, 0, 1])


def test_negative_weights_give_half_the_mass_to_same_video() -> None:
    groups = torch.tensor([0, 0, 0, 1, 2])
    w = negative_weights(groups)
    # Anchor 0: two same-video negatives share 0.5, two other-video negatives share 0.5.
    assert w[0].tolist() == pytest.approx([0.0, 0.25, 0.25, 0.25, 0.25])
    # Anchor 3 has no same-video negative: all mass to the four others.
    assert w[3].tolist() == pytest.approx([0.25, 0.25, 0.25, 0.0, 0.25])
    assert torch.allclose(w.sum(1), torch.ones(5))
    groups = torch.tensor([0, 0, 0, 0, 1])
    w = negative_weights(groups)
    # Three same-video negatives share half, the single other-video negative gets the other half.
    assert w[0].tolist() == pytest.approx([0.0, 1 / 6, 1 / 6, 1 / 6, 0.5])


def test_unweighted_negatives_are_uniform() -> None:
    w = negative_weights(torch.tensor([0, 0, 0, 1, 2]), weighting=False)
    assert w[0].tolist() == pytest.approx([0.0, 0.25, 0.25, 0.25, 0.25])


def test_max_margin_hand_computed() -> None:
    m = 0.1
    # Hinges h_ij = relu(m + s_ij - s_ii) + relu(m + s_ji - s_ii):
    # i=0: j=1: relu(.1+.8-.9)=0 + relu(.1+.5-.9)=0 -> 0;   j=2: relu(.1+.1-.9)=0 + relu(.1+.3-.9)=0 -> 0
    # i=1: j=0: relu(.1+.5-.6)=0 + relu(.1+.8-.6)=.3 -> .3; j=2: relu(.1+.2-.6)=0 + relu(.1+.4-.6)=0 -> 0
    # i=2: j=0: relu(.1+.3-.7)=0 + relu(.1+.1-.7)=0 -> 0;   j=1: relu(.1+.4-.7)=0 + relu(.1+.2-.7)=0 -> 0
    # Weights: anchors 0 and 1 have one same-video and one other negative (0.5 each); anchor 2 has two
    # other-video negatives (0.5 each). Loss = mean_i sum_j w_ij h_ij = (0 + 0.5 * 0.3 + 0) / 3.
    loss = MaxMarginRankingLoss(margin=m)(SIM, GROUPS)
    assert float(loss) == pytest.approx(0.05)


def test_max_margin_weighting_changes_the_loss() -> None:
    sim = torch.tensor(
        [[0.5, 0.45, 0.0, 0.0], [0.45, 0.5, 0.0, 0.0], [0.0, 0.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.5]]
    )
    groups = torch.tensor([0, 0, 1, 2])
    # Only the same-video pair (0, 1) violates the margin: h_01 = h_10 = 2 * (0.1 + 0.45 - 0.5) = 0.1.
    weighted = MaxMarginRankingLoss(0.1, negative_weighting=True)(sim, groups)
    uniform = MaxMarginRankingLoss(0.1, negative_weighting=False)(sim, groups)
    assert float(weighted) == pytest.approx((0.5 * 0.1 * 2) / 4)  # same-video half has one member
    assert float(uniform) == pytest.approx((0.1 / 3 * 2) / 4)


def test_max_margin_is_zero_when_margins_hold() -> None:
    sim = torch.eye(4)
    assert float(MaxMarginRankingLoss(0.1)(sim, torch.tensor([0, 0, 1, 1]))) == 0.0


def test_neighbour_mask() -> None:
    mask = neighbour_mask(torch.tensor([0, 0, 0, 1]), torch.tensor([0, 1, 5, 0]), neighbours=1)
    assert mask.tolist() == [
        [True, True, False, False],
        [True, True, False, False],
        [False, False, True, False],
        [False, False, False, True],
    ]


def test_milnce_inbatch_hand_computed() -> None:
    tau = 1.0
    # x = sim.T (videos x texts): x = [[.9,.5,.3],[.8,.6,.4],[.1,.2,.7]]. Positives (neighbours=1, order 0,1,0):
    # clip 0: texts {0,1}; clip 1: texts {0,1}; clip 2: text {2}.
    e = math.exp
    num0 = e(0.9) + e(0.5)
    # Denominator of clip 0: its row (all texts) + other clips on its positive texts 0 and 1.
    den0 = (e(0.9) + e(0.5) + e(0.3)) + (e(0.8) + e(0.1)) + (e(0.6) + e(0.2))
    num1 = e(0.8) + e(0.6)
    den1 = (e(0.8) + e(0.6) + e(0.4)) + (e(0.9) + e(0.1)) + (e(0.5) + e(0.2))
    num2 = e(0.7)
    den2 = (e(0.1) + e(0.2) + e(0.7)) + (e(0.3) + e(0.4))
    expected = -(math.log(num0 / den0) + math.log(num1 / den1) + math.log(num2 / den2)) / 3
    loss = InBatchMILNCELoss(temperature=tau, neighbours=1)(SIM, GROUPS, torch.tensor([0, 1, 0]))
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_milnce_inbatch_with_no_neighbours_reduces_to_two_way_nce() -> None:
    loss = InBatchMILNCELoss(temperature=0.5, neighbours=0)(SIM, GROUPS, torch.tensor([0, 1, 0]))
    x = SIM.t() / 0.5
    expected = 0.0
    for i in range(3):
        den = torch.logsumexp(torch.cat([x[i], x[[k for k in range(3) if k != i], i]]), 0)
        expected += float(den - x[i, i]) / 3
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_infonce_hand_computed() -> None:
    sim = torch.tensor([[1.0, 0.0], [0.5, 1.0]])
    tau = 0.5
    e = math.exp
    t2v = -(math.log(e(2) / (e(2) + e(0))) + math.log(e(2) / (e(1) + e(2)))) / 2
    v2t = -(math.log(e(2) / (e(2) + e(1))) + math.log(e(2) / (e(0) + e(2)))) / 2
    loss = SymmetricInfoNCE(temperature=tau)(sim)
    assert float(loss) == pytest.approx((t2v + v2t) / 2, rel=1e-6)


@pytest.mark.parametrize("name", ["max_margin", "milnce_inbatch", "infonce"])
def test_losses_have_gradients_and_prefer_aligned_pairs(name: str) -> None:
    torch.manual_seed(0)
    loss_fn = build_loss(name)
    groups = torch.tensor([0, 0, 1, 1, 2, 2])
    order = torch.tensor([0, 3, 0, 3, 0, 3])
    aligned = torch.eye(6) * 0.9
    noisy = torch.rand(6, 6, requires_grad=True)
    assert float(loss_fn(aligned, groups, order)) < float(loss_fn(noisy.detach(), groups, order))
    loss_fn(noisy, groups, order).backward()
    assert noisy.grad is not None and torch.isfinite(noisy.grad).all()


def test_unknown_loss_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown loss"):
        build_loss("triplet")


@pytest.mark.parametrize("weighting", [True, False])
@pytest.mark.parametrize(
    "groups",
    [
        [0, 0, 0, 1, 2],  # same-video and other-video negatives, singletons
        [0] * 7,  # one video: same-video negatives only
        list(range(6)),  # one clip a video: other-video negatives only
        [3, 1, 3, 2, 1, 1, 0, 2, 3, 3],  # groups interleaved, of different sizes
    ],
)
def test_fused_max_margin_gives_the_autograd_forms_loss_and_gradient(
    weighting: bool, groups: list[int]
) -> None:
    """The fused form (bf16 steps) is the same function: loss and gradient as the autograd form's, to
    float rounding, with the hinges that sit exactly at 0 (relu' = 0 there) included."""
    g = torch.Generator().manual_seed(len(groups))
    sim = torch.rand(len(groups), len(groups), generator=g, dtype=torch.float64) * 2 - 1
    sim[0, 1] = sim[0, 0] - 0.1  # a first hinge exactly at 0
    group_ids = torch.tensor(groups)
    results = []
    for fused in (False, True):
        s = sim.clone().requires_grad_(True)
        loss = MaxMarginRankingLoss(0.1, negative_weighting=weighting, fused=fused)(s, group_ids)
        (grad,) = torch.autograd.grad(loss, s)
        results.append((float(loss.detach()), grad))
    (loss_a, grad_a), (loss_f, grad_f) = results
    assert loss_f == pytest.approx(loss_a, rel=1e-6)
    assert torch.allclose(grad_f, grad_a, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("weighting", [True, False])
@pytest.mark.parametrize(
    "groups",
    [[0, 0, 0, 1, 2], [0] * 7, list(range(6)), [3, 1, 3, 2, 1, 1, 0, 2, 3, 3], [i // 16 for i in range(256)]],
)
def test_the_compiled_max_margin_reads_bf16_and_gives_the_gradient_rounded_once(
    weighting: bool, groups: list[int]
) -> None:
    """A bf16 step's similarities go to the fused loss as they are; on a CPU one compiled kernel reads
    them in float32: the autograd form's loss on the same values to float32 rounding, and its gradient
    rounded once to bf16 (as the matmuls' backward reads it), hinges at exactly 0 included."""
    from models.cpu_kernels import compile_failure
    from models.losses.max_margin import COMPILED_LOSS

    n = len(groups)
    g = torch.Generator().manual_seed(n)
    sim = (torch.rand(n, n, generator=g) * 2 - 1).to(torch.bfloat16)
    sim[0, 1] = sim[0, 0] - 0.125  # a first hinge exactly at 0 (exact in bf16 and float64)
    group_ids = torch.tensor(groups)
    loss_fn = MaxMarginRankingLoss(0.125, negative_weighting=weighting, fused=True)
    assert loss_fn.reads_low_precision
    s = sim.clone().requires_grad_(True)
    loss = loss_fn(s, group_ids)
    (grad,) = torch.autograd.grad(loss, s)
    assert compile_failure(COMPILED_LOSS) is None
    exact = sim.double().requires_grad_(True)
    want = MaxMarginRankingLoss(0.125, negative_weighting=weighting)(exact, group_ids)
    (want_grad,) = torch.autograd.grad(want, exact)
    assert loss.dtype == torch.float32
    assert float(loss.detach()) == pytest.approx(float(want.detach()), rel=1e-5)
    assert grad.dtype == torch.bfloat16
    assert torch.allclose(grad.double(), want_grad, rtol=2**-8, atol=1e-7)


def test_fused_max_margin_passes_gradcheck_and_is_what_build_loss_makes() -> None:
    from models.losses.max_margin import _RowMajorMaxMargin

    # Random values: no hinge within gradcheck's step of its kink.
    g = torch.Generator().manual_seed(5)
    sim = (torch.rand(4, 4, generator=g, dtype=torch.float64) * 0.6).requires_grad_(True)
    groups = torch.tensor([0, 0, 1, 2])
    assert torch.autograd.gradcheck(lambda s: _RowMajorMaxMargin.apply(s, groups, 0.1, True, None), (sim,))
    assert build_loss("max_margin", fused=True).fused  # type: ignore[union-attr]
    assert not build_loss("max_margin").fused  # type: ignore[union-attr]
