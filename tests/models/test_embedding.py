"""Gated embedding units, encoders and the training loop on a tiny separable problem."""

from __future__ import annotations

import io

import torch

from models.embedding import GatedEmbeddingUnit, build_model
from models.evaluate import evaluate_pairs
from models.losses import build_loss
from models.train_loop import (
    Batch,
    TrainState,
    make_optimizer,
    read_checkpoint,
    restore,
    save_checkpoint,
    train_epoch,
)


def test_gated_unit_matches_its_formula() -> None:
    torch.manual_seed(0)
    unit = GatedEmbeddingUnit(5, 3)
    x = torch.randn(4, 5)
    y = x @ unit.fc.weight.t() + unit.fc.bias
    gated = y * torch.sigmoid(y @ unit.gate.weight.t() + unit.gate.bias)
    expected = gated / gated.norm(dim=1, keepdim=True)
    assert torch.allclose(unit(x), expected, atol=1e-6)
    assert torch.allclose(unit(x).norm(dim=1), torch.ones(4))


def test_video_standardisation_is_applied() -> None:
    model = build_model("minilm", d=8, d_video=4, d_sentence=3)
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    before = model.video(x)
    model.video.set_standardisation(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.ones(4))
    after = model.video(x)
    assert torch.allclose(after, model.video.unit(torch.zeros(1, 4)))
    assert not torch.allclose(before, after)


def test_word_encoder_pads_and_handles_empty_captions() -> None:
    model = build_model("learned", d=8, vocab_size=10)
    ids = torch.tensor([[1, 2, 0, 0], [0, 0, 0, 0]])
    out = model.text(ids)
    assert torch.isfinite(out).all() and out.shape == (2, 8)
    # Padding never changes a caption's embedding.
    assert torch.allclose(model.text(torch.tensor([[1, 2]])), out[:1], atol=1e-6)


def _toy_batches(
    n_videos: int = 4, clips: int = 6, seed: int = 0
) -> tuple[list[Batch], torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    classes = torch.randn(12, 16, generator=g)
    words = torch.randn(12, 8, generator=g)
    batches = []
    for _ in range(3):
        labels = torch.randint(0, 12, (n_videos * clips,), generator=g)
        video = classes[labels] + 0.1 * torch.randn(len(labels), 16, generator=g)
        groups = torch.arange(n_videos).repeat_interleave(clips)
        batches.append(Batch(video, words[labels], groups, torch.arange(clips).repeat(n_videos)))
    return batches, classes, words


def test_training_learns_a_toy_problem_and_resumes_from_checkpoint() -> None:
    torch.manual_seed(0)
    batches, classes, words = _toy_batches()
    model = build_model("minilm", d=32, d_video=16, d_sentence=8)
    optimizer, scheduler = make_optimizer(model, lr=1e-2)
    loss_fn = build_loss("max_margin")
    device = torch.device("cpu")
    first = train_epoch(model, loss_fn, optimizer, batches, device)
    for _ in range(20):
        last = train_epoch(model, loss_fn, optimizer, batches, device)
        scheduler.step()
    assert last.loss < first.loss and last.pairs == 72 and last.batches == 3
    metrics = evaluate_pairs(model, classes, words, device)
    assert metrics["R@1"] >= 0.9 and metrics["candidates"] == 12

    buffer = io.BytesIO()
    save_checkpoint(buffer, TrainState(model, optimizer, scheduler, epoch=21, extra={"d": 32}))
    buffer.seek(0)
    clone = build_model("minilm", d=32, d_video=16, d_sentence=8)
    opt2, sched2 = make_optimizer(clone, lr=1e-2)
    state = read_checkpoint(buffer)
    assert restore(state, clone, opt2, sched2) == 21 and state["extra"] == {"d": 32}
    assert sched2.get_last_lr() == scheduler.get_last_lr()
    assert torch.allclose(clone.video(classes), model.video(classes))


def test_the_bf16_gated_tail_is_autograds_function_with_its_gradient() -> None:
    """bf16 steps run the gate and L2 with a written-out backward: in float64 it is the autograd form's
    function and gradient, a zero row included (F.normalize divides it by eps)."""
    import torch.nn.functional as F

    from models.embedding import _GatedNormalize

    g = torch.Generator().manual_seed(3)
    y = torch.randn(6, 5, dtype=torch.float64, generator=g)
    y[2] = 0.0
    y.requires_grad_(True)
    z = torch.randn(6, 5, dtype=torch.float64, generator=g, requires_grad=True)
    upstream = torch.randn(6, 5, dtype=torch.float64, generator=g)
    ours = _GatedNormalize.apply(y, z)
    reference = F.normalize(y * torch.sigmoid(z), dim=-1)
    assert torch.allclose(ours, reference, rtol=1e-12, atol=0)
    grads = torch.autograd.grad(ours, (y, z), upstream)
    expected = torch.autograd.grad(reference, (y, z), upstream)
    for a, b in zip(grads, expected, strict=True):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)
    y2 = torch.randn(4, 3, dtype=torch.float64, generator=g, requires_grad=True)
    z2 = torch.randn(4, 3, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(_GatedNormalize.apply, (y2, z2))


def test_the_gated_unit_under_bf16_autocast_stays_close_to_fp32() -> None:
    from models.embedding import GatedEmbeddingUnit

    torch.manual_seed(0)
    unit = GatedEmbeddingUnit(64, 48)
    x = torch.randn(32, 64)
    full = unit(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = unit(x)
    assert half.dtype == torch.bfloat16
    assert float(torch.nn.functional.cosine_similarity(half.float(), full, dim=-1).min().detach()) > 0.99
    half.float().sum().backward()
    assert unit.fc.weight.grad is not None and torch.isfinite(unit.fc.weight.grad).all()


def test_standardisation_under_bf16_autocast_is_one_rounding_of_the_fp32_values() -> None:
    from models.embedding import VideoEncoder

    g = torch.Generator().manual_seed(3)
    encoder = VideoEncoder(64, 16)
    encoder.set_standardisation(torch.randn(64, generator=g) * 3, torch.rand(64, generator=g) + 0.1)
    x = torch.randn(32, 64, generator=g) * 5
    exact = (x.double() - encoder.mean.double()) / encoder.std.double()
    plain = encoder.standardised(x)
    assert plain.dtype == torch.float32 and torch.equal(plain, (x - encoder.mean) / encoder.std)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = encoder.standardised(x)
        through = encoder(x)
    assert half.dtype == torch.bfloat16
    # Within one bf16 rounding (2^-8 relative) of the exact value: the cast is the only rounding that shows.
    assert float(((half.double() - exact).abs() / exact.abs().clamp_min(1e-3)).max()) <= 2**-8
    with torch.no_grad():
        cosine = torch.nn.functional.cosine_similarity(through.float(), encoder(x), dim=-1)
    assert float(cosine.min()) > 0.99
    # Data that needs its gradient keeps the autograd form.
    wanted = x.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        kept = encoder.standardised(wanted)
    kept.sum().backward()
    assert kept.dtype == torch.float32 and torch.allclose(wanted.grad, (1 / encoder.std).expand_as(x))


def _exact_tail(y: torch.Tensor, z: torch.Tensor, upstream: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The gated tail and its input gradients in float64 from the same (bf16) values."""
    import torch.nn.functional as F

    y64 = y.double().requires_grad_(True)
    z64 = z.double().requires_grad_(True)
    out = F.normalize(y64 * torch.sigmoid(z64), dim=-1)
    dy, dz = torch.autograd.grad(out, (y64, z64), upstream.double())
    return out.detach(), dy, dz


def test_the_compiled_bf16_tail_rounds_once() -> None:
    """On a CPU the bf16 tail runs compiled, float32 inside: its output is the exact value rounded to bf16
    (within 2^-8 of the row's scale), its gradients, computed from the saved bf16 output and gate, within
    2^-7, each at least as close as the eager ops', which round after each op; a zero row included. The same under the row-major GEMM mode, which the
    compiled kernels step out of."""
    from models.cpu_kernels import compile_failure
    from models.embedding import _eager_tail, _GatedNormalize
    from models.gemm_layout import RowMajorGemms

    g = torch.Generator().manual_seed(5)
    y = torch.randn(64, 96, generator=g).to(torch.bfloat16)
    y[7] = 0.0
    z = torch.randn(64, 96, generator=g).to(torch.bfloat16)
    upstream = torch.randn(64, 96, generator=g).to(torch.bfloat16)
    exact = _exact_tail(y, z, upstream)

    def run(fn: object) -> tuple[torch.Tensor, ...]:
        yy, zz = y.clone().requires_grad_(True), z.clone().requires_grad_(True)
        out = fn(yy, zz)  # type: ignore[operator]
        dy, dz = torch.autograd.grad(out, (yy, zz), upstream)
        return out.detach(), dy, dz

    compiled = run(_GatedNormalize.apply)
    assert compile_failure("gated tail forward") is None and compile_failure("gated tail backward") is None
    eager = run(_eager_tail)
    with RowMajorGemms():
        moded = run(_GatedNormalize.apply)
    for ours, theirs, want, under_mode in zip(compiled, eager, exact, moded, strict=True):
        assert ours.dtype == torch.bfloat16
        scale = want.abs().amax(dim=-1, keepdim=True).clamp_min(1e-30)
        error = ((ours.double() - want) / scale).abs().max()
        assert error <= (2**-8 if ours is compiled[0] else 2**-7)  # the gradients read bf16 saved values
        assert error <= ((theirs.double() - want) / scale).abs().max()
        assert torch.equal(ours, under_mode)


def test_the_compiled_tail_compiles_once_for_every_batch_shape() -> None:
    """Batches differ in size (videos with fewer clips) and models in width: the tail's kernels compile
    once per process with dynamic shapes, never again per shape (a recompile costs seconds, and past
    dynamo's limit the kernel would silently drop back to eager)."""
    from torch._dynamo.utils import counters

    from models.embedding import _GatedNormalize

    def step(n: int, d: int) -> None:
        y = torch.randn(n, d).to(torch.bfloat16).requires_grad_(True)
        z = torch.randn(n, d).to(torch.bfloat16).requires_grad_(True)
        _GatedNormalize.apply(y, z).float().sum().backward()
        assert y.grad is not None and torch.isfinite(y.grad.float()).all()

    step(16, 32)  # compiled here at the latest
    graphs = counters["stats"]["unique_graphs"]
    for n, d in ((64, 96), (100, 48), (7, 300), (2048, 512)):
        step(n, d)
    assert counters["stats"]["unique_graphs"] == graphs


def _unit_run(
    unit: GatedEmbeddingUnit, x: torch.Tensor, upstream: torch.Tensor, fused: bool, autocast: bool = False
) -> tuple[str, list[torch.Tensor]]:
    """The unit's output and its gradients (x, fc weight and bias, gate weight and bias), through the bf16
    unit Function or (fused False) the unit's own modules; and the type of the output's grad_fn."""
    import contextlib

    import models.embedding as embedding

    real = embedding._bf16_unit
    params = (unit.fc.weight, unit.fc.bias, unit.gate.weight, unit.gate.bias)
    try:
        if not fused:
            embedding._bf16_unit = lambda *args: None  # type: ignore[assignment]
        for p in params:
            p.grad = None
        wanted = x.clone().requires_grad_(True)
        context = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
        with context:
            out = unit(wanted)
        out.backward(upstream)
    finally:
        embedding._bf16_unit = real
    assert wanted.grad is not None and all(p.grad is not None for p in params)
    grads = [wanted.grad, *(p.grad for p in params if p.grad is not None)]
    return type(out.grad_fn).__name__, [out.detach(), *grads]


def test_the_bf16_unit_sums_ys_gradients_in_its_gemm_and_keeps_autograds_formulas() -> None:
    """A bf16 unit on a CPU runs as one Function whose backward adds the gate's input gradient into the
    tail's by the GEMM (addmm_): the output and the gate's gradients are the modules' own bits, and the
    gradients after that sum (x, fc weight and bias) are within bf16 rounding of the float64 values
    computed from the same bf16 intermediates, as close as autograd's two roundings are."""
    from models.embedding import _GatedNormalize

    torch.manual_seed(0)
    unit = GatedEmbeddingUnit(96, 64).to(torch.bfloat16)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(80, 96, generator=g).to(torch.bfloat16)
    upstream = torch.randn(80, 64, generator=g).to(torch.bfloat16)
    kind, ours = _unit_run(unit, x, upstream, fused=True)
    assert kind == "_Bf16GatedUnitBackward"
    other_kind, theirs = _unit_run(unit, x, upstream, fused=False)
    assert other_kind != kind
    out, dx, dw1, db1, dw2, db2 = ours
    assert torch.equal(out, theirs[0])
    assert torch.equal(dw2, theirs[4]) and torch.equal(db2, theirs[5])
    # y's gradient in float64 from the bf16 values the step holds: the tail's two gradients and W2.
    w1, b1, w2, b2 = (p.detach() for p in (unit.fc.weight, unit.fc.bias, unit.gate.weight, unit.gate.bias))
    y = torch.nn.functional.linear(x, w1, b1).requires_grad_(True)
    z = torch.nn.functional.linear(y.detach(), w2, b2).requires_grad_(True)
    dy_tail, dz = torch.autograd.grad(_GatedNormalize.apply(y, z), (y, z), upstream)
    dy = dy_tail.double() + dz.double() @ w2.double()
    expected = {"dx": dy @ w1.double(), "dw1": dy.t() @ x.double(), "db1": dy.sum(0)}
    for name, got, autograds in zip(expected, (dx, dw1, db1), theirs[1:4], strict=True):
        want = expected[name]
        error = (got.double() - want).abs()
        assert float(error.max()) <= 2**-6 * float(want.abs().max()), name
        assert float(error.mean()) <= 1.25 * float((autograds.double() - want).abs().mean()), name


def test_under_autocast_the_bf16_unit_trains_fp32_weights() -> None:
    """Under bf16 autocast (a bf16 step without weight copies) the unit casts its fp32 weights as autocast
    would and their gradients arrive in fp32, as autograd's path gives them (to bf16 rounding)."""
    torch.manual_seed(0)
    unit = GatedEmbeddingUnit(48, 32)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(40, 48, generator=g)
    upstream = torch.randn(40, 32, generator=g).to(torch.bfloat16)
    kind, ours = _unit_run(unit, x, upstream, fused=True, autocast=True)
    assert kind == "_Bf16GatedUnitBackward"
    _, theirs = _unit_run(unit, x, upstream, fused=False, autocast=True)
    assert torch.equal(ours[0], theirs[0])
    for got, want in zip(ours[1:], theirs[1:], strict=True):
        assert got.dtype == want.dtype == torch.float32
        assert torch.allclose(got, want, rtol=2**-6, atol=2**-6 * float(want.abs().max()))


def test_fp32_units_keep_the_modules_path() -> None:
    unit = GatedEmbeddingUnit(8, 4)
    kind, _ = _unit_run(unit, torch.randn(5, 8), torch.randn(5, 4), fused=True)
    assert kind != "_Bf16GatedUnitBackward"


def test_the_compiled_standardisation_is_the_addcmul_form_to_one_rounding() -> None:
    """Under bf16 autocast on a CPU the standardisation runs as one compiled loop: from stored float16 or
    float32 alike (the same bits), within one bf16 rounding of torch.addcmul's value."""
    import models.embedding as embedding
    from models.embedding import VideoEncoder

    g = torch.Generator().manual_seed(4)
    encoder = VideoEncoder(256, 16)
    encoder.set_standardisation(torch.randn(256, generator=g), torch.rand(256, generator=g) + 0.1)
    x = (torch.randn(64, 256, generator=g) * 3).half()
    assert embedding._standardise_kernel(x, torch.bfloat16) is not None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        compiled = encoder.standardised(x)
        from_fp32 = encoder.standardised(x.float())
    inverse = encoder.std.reciprocal()
    addcmul = torch.addcmul(-encoder.mean * inverse, x.float(), inverse)
    assert compiled.dtype == torch.bfloat16 and torch.equal(compiled, from_fp32)
    assert torch.allclose(compiled.float(), addcmul, rtol=2**-8, atol=0)
