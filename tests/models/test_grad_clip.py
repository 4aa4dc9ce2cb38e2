"""Gradient clipping by global norm, in fp32 and through the bf16 weight copies, on a real model and loss."""

from __future__ import annotations

import torch

from models.embedding import JointEmbedding, build_model
from models.grad_clip import clip_gradients, step_gradients
from models.losses import build_loss
from models.mixed_adam import MixedAdam
from models.train_loop import Batch, make_optimizer, train_step

CPU = torch.device("cpu")


def _model(seed: int = 0) -> JointEmbedding:
    torch.manual_seed(seed)
    return build_model("minilm", d=32, d_video=48, d_sentence=24)


def _batch(seed: int) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(
        torch.randn(16, 48, generator=g),
        torch.randn(16, 24, generator=g),
        torch.arange(16) // 4,
        torch.arange(16) % 4,
    )


def _backward(model: JointEmbedding, optimizer: torch.optim.Optimizer, batch: Batch) -> None:
    """The step's loss and gradients as train_step makes them (through the copies when MixedAdam)."""
    loss_fn = build_loss("infonce")
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=isinstance(optimizer, MixedAdam)):
        if isinstance(optimizer, MixedAdam):
            v, t = torch.func.functional_call(model, optimizer.forward_weights(), (batch.video, batch.text))
        else:
            v, t = model(batch.video, batch.text)
        sim = JointEmbedding.similarity(t, v).float()
    (loss_fn(sim, batch.groups, batch.order) * 100).backward()  # x100: gradients well above the bound


def _norm(grads: list[torch.Tensor]) -> float:
    return float(torch.linalg.vector_norm(torch.stack([g.float().norm() for g in grads])))


def test_fp32_clipping_is_torchs_and_bounds_the_norm() -> None:
    model, twin = _model(), _model()
    optimizer, _ = make_optimizer(model)
    _backward(model, optimizer, _batch(0))
    _backward(twin, make_optimizer(twin)[0], _batch(0))
    before = _norm(step_gradients(optimizer))
    assert before > 1.0
    total = clip_gradients(optimizer, 0.5)
    assert abs(float(total) - before) < 1e-5 * before
    assert abs(_norm(step_gradients(optimizer)) - 0.5) < 1e-5
    torch.nn.utils.clip_grad_norm_(twin.parameters(), 0.5)
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        assert a.grad is not None and b.grad is not None
        assert torch.allclose(a.grad, b.grad, rtol=1e-6, atol=1e-9)


def test_a_bound_above_the_norm_leaves_gradients_as_they_are() -> None:
    model = _model()
    optimizer, _ = make_optimizer(model)
    _backward(model, optimizer, _batch(1))
    kept = [g.clone() for g in step_gradients(optimizer)]
    clip_gradients(optimizer, 1e6)
    assert all(torch.equal(a, b) for a, b in zip(kept, step_gradients(optimizer), strict=True))


def test_bf16_copies_gradients_are_clipped_with_the_rest() -> None:
    """With the bf16 weight copies the Linear layers' gradients live on the copies, not the masters:
    the global norm counts both, and after clipping it is at the bound within bf16's rounding."""
    model = _model()
    optimizer, _ = make_optimizer(model, precision="bf16", weight_copies=True)
    assert isinstance(optimizer, MixedAdam)
    _backward(model, optimizer, _batch(2))
    on_copies = [c.grad for c in optimizer.copies.values() if c.grad is not None]
    assert on_copies and all(g.dtype == torch.bfloat16 for g in on_copies)
    assert all(p.grad is None for p in model.parameters())  # the fp32 masters of the copies have none
    before = _norm(step_gradients(optimizer))
    assert before > 2.0
    clip_gradients(optimizer, 2.0)
    after = _norm(step_gradients(optimizer))
    assert abs(after - 2.0) < 2.0 * 2**-8, after


def test_train_step_clips_before_the_update() -> None:
    """A step with clip_norm updates the weights as torch's clipping then Adam would."""
    model, twin = _model(), _model()
    optimizer, _ = make_optimizer(model, lr=1e-2)
    reference, _ = make_optimizer(twin, lr=1e-2)
    loss_fn = build_loss("max_margin")
    for seed in range(3):
        train_step(model, loss_fn, optimizer, _batch(seed), CPU, clip_norm=0.05)
        reference.zero_grad(set_to_none=True)
        v, t = twin(_batch(seed).video, _batch(seed).text)
        loss_fn(JointEmbedding.similarity(t, v).float(), _batch(seed).groups, _batch(seed).order).backward()
        assert float(torch.nn.utils.clip_grad_norm_(twin.parameters(), 0.05)) > 0.05  # it did clip
        reference.step()
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)
