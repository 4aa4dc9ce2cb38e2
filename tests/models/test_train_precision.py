"""Training precision: bf16 autocast where the hardware has it, fp32 kept and unchanged by default."""

from __future__ import annotations

import copy

import pytest
import torch

from models.cpu_precision import cpu_bf16
from models.embedding import build_model
from models.losses import build_loss
from models.train_loop import Batch, make_optimizer, pick_precision, train_epoch, train_step


def _batch(seed: int = 0, videos: int = 4, clips: int = 8) -> Batch:
    g = torch.Generator().manual_seed(seed)
    n = videos * clips
    labels = torch.randint(0, 10, (n,), generator=g)
    classes, words = torch.randn(10, 32, generator=g), torch.randn(10, 12, generator=g)
    video = classes[labels] + 0.1 * torch.randn(n, 32, generator=g)
    groups = torch.arange(videos).repeat_interleave(clips)
    return Batch(video, words[labels], groups, torch.arange(clips).repeat(videos))


def test_precision_choice() -> None:
    cpu = torch.device("cpu")
    assert pick_precision(cpu, "auto") == cpu_bf16().precision
    assert pick_precision(cpu, "fp32") == "fp32" and pick_precision(cpu, "bf16") == "bf16"
    with pytest.raises(ValueError, match="fp16"):
        pick_precision(cpu, "fp16")


def test_bf16_step_tracks_the_fp32_step_and_keeps_fp32_weights() -> None:
    """Same start, same batch: the bf16 loss is the fp32 loss to bf16 accuracy, and the update moves the
    weights the same way; parameters and optimiser state stay fp32 (autocast, not a converted model)."""
    torch.manual_seed(0)
    model = build_model("minilm", d=64, d_video=32, d_sentence=12)
    twin = copy.deepcopy(model)
    loss_fn, batch, cpu = build_loss("max_margin"), _batch(), torch.device("cpu")
    opt32, _ = make_optimizer(model, lr=1e-3)
    opt16, _ = make_optimizer(twin, lr=1e-3)
    start = [p.detach().clone() for p in model.parameters()]
    loss32 = train_step(model, loss_fn, opt32, batch, cpu)
    loss16 = train_step(twin, loss_fn, opt16, batch, cpu, precision="bf16")
    assert loss16 == pytest.approx(loss32, rel=0.05, abs=2e-3)
    assert all(p.dtype == torch.float32 for p in twin.parameters())
    assert all(s.dtype == torch.float32 for st in opt16.state.values() for s in st.values() if s.dim())
    moves = [(a - s).flatten() for a, s in zip(model.parameters(), start, strict=True)]
    moves16 = [(b - s).flatten() for b, s in zip(twin.parameters(), start, strict=True)]
    cosine = torch.nn.functional.cosine_similarity(torch.cat(moves), torch.cat(moves16), dim=0)
    assert cosine > 0.95  # Adam's first step is ~sign(grad): bf16 flips only the tiniest gradients


def test_bf16_training_learns() -> None:
    torch.manual_seed(0)
    model = build_model("minilm", d=64, d_video=32, d_sentence=12)
    optimizer, _ = make_optimizer(model, lr=1e-2)
    batches = [_batch(seed) for seed in range(3)]
    loss_fn, cpu = build_loss("max_margin"), torch.device("cpu")
    first = train_epoch(model, loss_fn, optimizer, batches, cpu, precision="bf16")
    for _ in range(3):
        last = train_epoch(model, loss_fn, optimizer, batches, cpu, precision="bf16")
    assert last.loss < 0.5 * first.loss and last.pairs == 96
