"""How batches reach a training step and how its loss is read: the fused optimiser, float16 video
vectors read as stored, batches staged in the loader thread, losses read one step late."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from models.embedding import JointEmbedding, build_model
from models.losses import build_loss
from models.train_loop import (
    Batch,
    batch_inputs,
    make_optimizer,
    staged_for,
    train_epoch,
    train_step,
)
from tasks.bench.training import DATA_BATCHES, default_steps, run_bench
from tasks.train.data import Pairs, make_batch, prefetch

CPU = torch.device("cpu")


def _batch(seed: int, videos: int = 4, clips: int = 8) -> Batch:
    g = torch.Generator().manual_seed(seed)
    n = videos * clips
    labels = torch.randint(0, 10, (n,), generator=g)
    classes, words = torch.randn(10, 32, generator=g), torch.randn(10, 12, generator=g)
    video = (classes[labels] + 0.1 * torch.randn(n, 32, generator=g)).half()  # as stored in Parquet
    groups = torch.arange(videos).repeat_interleave(clips)
    return Batch(video, words[labels], groups, torch.arange(clips).repeat(videos))


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("minilm", d=64, d_video=32, d_sentence=12)


def test_the_cpu_optimizer_is_foreach_and_gives_the_loops_bits() -> None:
    """On a CPU, Adam's foreach form: faster than torch's default loop and the same bits, so CPU training
    results (the demo's figures) do not move."""
    model = _model()
    reference = copy.deepcopy(model)
    optimizer, _ = make_optimizer(model, lr=1e-2)
    assert optimizer.defaults["foreach"] is True and not optimizer.defaults["fused"]
    loop = torch.optim.Adam(reference.parameters(), lr=1e-2, foreach=False)
    loss_fn = build_loss("max_margin")
    for seed in range(10):
        assert train_step(model, loss_fn, optimizer, _batch(seed), CPU) == train_step(
            reference, loss_fn, loop, _batch(seed), CPU
        )
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(a, b)
    moved = sum(
        float((a - b).detach().abs().sum())
        for a, b in zip(model.parameters(), _model().parameters(), strict=True)
    )
    assert moved > 1.0  # the weights did move: the comparison above is not of two idle models


def test_a_cpu_bf16_step_takes_the_fused_optimizer_and_tracks_the_loop() -> None:
    """bf16 steps keep no fp32 bits to protect, so a CPU takes Adam's fused form for them (models/
    train_loop.py _adam): the same algorithm, weights within float32 rounding of the loop's."""
    model = _model()
    reference = copy.deepcopy(model)
    optimizer, _ = make_optimizer(model, lr=1e-2, precision="bf16")
    assert optimizer.defaults["fused"] is True
    loop = torch.optim.Adam(reference.parameters(), lr=1e-2, foreach=False)
    loss_fn = build_loss("max_margin")
    for seed in range(10):
        batch = _batch(seed)
        # The same fp32 gradients into both, so only the optimisers' arithmetic can differ.
        for net, opt in ((model, optimizer), (reference, loop)):
            opt.zero_grad()
            video, text = net(batch.video, batch.text)
            loss_fn(JointEmbedding.similarity(text, video), batch.groups).backward()
            opt.step()
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)
    assert not torch.equal(next(model.parameters()), next(_model().parameters()))  # they did move


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the fused form is taken on a CUDA device")
def test_the_gpu_optimizer_is_fused_and_tracks_the_loop() -> None:
    cuda = torch.device("cuda")
    model = _model().to(cuda)
    reference = copy.deepcopy(model)
    optimizer, _ = make_optimizer(model, lr=1e-2)
    assert optimizer.defaults["fused"] is True
    loop = torch.optim.Adam(reference.parameters(), lr=1e-2, foreach=False)
    loss_fn = build_loss("max_margin")
    for seed in range(10):
        train_step(model, loss_fn, optimizer, _batch(seed), cuda)
        train_step(reference, loss_fn, loop, _batch(seed), cuda)
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def test_a_checkpointed_optimizer_keeps_its_form() -> None:
    """A run saved with torch's default loop resumes with the loop (same arithmetic as it started)."""
    model = _model()
    old = torch.optim.Adam(model.parameters(), lr=1e-2)
    train_step(model, build_loss("max_margin"), old, _batch(0), CPU)
    resumed, _ = make_optimizer(model, lr=1e-2)
    assert resumed.param_groups[0]["foreach"]
    resumed.load_state_dict(old.state_dict())
    assert not resumed.param_groups[0]["foreach"] and not resumed.param_groups[0]["fused"]


@pytest.mark.parametrize("video_kind", ["pooled", "transformer"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_float16_video_gives_the_same_steps_as_float32(precision: str, video_kind: str) -> None:
    """Batches keep the stored float16 up to the video encoder, which reads it as it is: float16 widens to
    float32 exactly, so a step on it changes no bit of the loss or the weights against the same step on
    a float32 copy, in either precision and for either video side."""

    def model() -> torch.nn.Module:
        torch.manual_seed(0)
        net = build_model("minilm", d=64, d_video=32, d_sentence=12, video_kind=video_kind)
        net.video.set_standardisation(torch.rand(32) - 0.5, torch.rand(32) + 0.5)
        return net

    half, full = model(), model()
    opt_half, _ = make_optimizer(half, lr=1e-2, precision=precision)
    opt_full, _ = make_optimizer(full, lr=1e-2, precision=precision)
    loss_fn = build_loss("max_margin", fused=precision == "bf16")
    for seed in range(3):
        batch = _batch(seed)
        widened = Batch(batch.video.float(), batch.text, batch.groups, batch.order)
        torch.manual_seed(seed)  # the transformer's dropout draws the same masks for both
        loss_half = train_step(half, loss_fn, opt_half, batch, CPU, precision)
        torch.manual_seed(seed)
        assert loss_half == train_step(full, loss_fn, opt_full, widened, CPU, precision)
    for a, b in zip(half.parameters(), full.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(half.video.unit.fc.weight, model().video.unit.fc.weight)  # the steps did move it
    video, text = batch_inputs(batch, CPU)
    assert video is batch.video and video.dtype == torch.float16 and text is batch.text


def test_staging_for_a_cpu_keeps_the_batch_as_built() -> None:
    batch = _batch(1)
    assert staged_for(batch, CPU) is batch and batch.video.dtype == torch.float16


@pytest.mark.skipif(not torch.cuda.is_available(), reason="page-locked staging is for a CUDA device")
def test_staging_for_a_gpu_pins_every_tensor_and_keeps_float16() -> None:
    staged = staged_for(_batch(1), torch.device("cuda"))
    assert staged.video.dtype == torch.float16
    assert all(t.is_pinned() for t in (staged.video, staged.text, staged.groups, staged.order))


def test_make_batch_keeps_the_stored_float16_and_prefetch_stages_it() -> None:
    rng = np.random.default_rng(0)
    pairs = Pairs(
        clip_ids=[f"c{i}" for i in range(6)],
        video_ids=np.array(["a", "a", "a", "b", "b", "b"], dtype=object),
        idx=np.array([0, 1, 2, 0, 1, 2], dtype=np.int64),
        spans_ms=np.zeros((6, 2), dtype=np.int64),
        texts=[f"t{i}" for i in range(6)],
        video=rng.standard_normal((6, 8)).astype(np.float16),
        text=rng.standard_normal((6, 4)).astype(np.float32),
    )
    rows = np.array([0, 2, 3, 5])
    batch = make_batch(pairs, rows, lambda p, r: torch.from_numpy(p.text[r]))
    assert batch.video.dtype == torch.float16 and np.array_equal(batch.video.numpy(), pairs.video[rows])
    (staged,) = list(prefetch(iter([batch]), CPU))
    assert staged.video.dtype == torch.float16 and np.array_equal(staged.video.numpy(), pairs.video[rows])


@pytest.mark.parametrize(("threads", "cores", "beside"), [(2, 2, False), (4, 2, False), (1, 2, True)])
def test_cpu_batches_are_built_between_steps_unless_torch_leaves_a_core_over(
    monkeypatch: pytest.MonkeyPatch, threads: int, cores: int, beside: bool
) -> None:
    """A loader thread beside CPU steps that use every core only slows every kernel: there the batches are
    built in the caller's thread, one as each is asked for; with a core over, in a thread, ahead."""
    import threading

    import tasks.train.data as data

    monkeypatch.setattr(data, "usable_cores", lambda: cores)
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    assert data.loads_beside_steps(CPU) is beside
    built: list[int] = []

    def items() -> Iterator[Batch]:
        for seed in range(3):
            built.append(threading.get_ident())
            yield _batch(seed)

    batches = prefetch(items(), CPU)
    first = next(batches)
    assert torch.equal(first.video, _batch(0).video)  # the first batch, as built, either way
    if beside:
        assert set(built) == {built[0]} and built[0] != threading.get_ident()
    else:
        assert built == [threading.get_ident()]  # only the batch asked for, here
    rest = list(batches)
    assert len(rest) == 2 and len(built) == 3
    assert all(ident != threading.get_ident() for ident in built) is beside


def test_the_loader_thread_stops_when_its_consumer_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """An epoch abandoned mid-way (a step raised, the generator closed) stops the loader beside it, which
    otherwise waited on its full queue for the life of the process, holding its batches."""
    import itertools
    import threading

    import tasks.train.data as data

    monkeypatch.setattr(data, "loads_beside_steps", lambda device: True)
    built = itertools.count()

    def endless() -> Iterator[Batch]:
        while True:
            next(built)
            yield _batch(0)

    batches = prefetch(endless(), CPU, depth=2)
    next(batches)
    (loader,) = [t for t in threading.enumerate() if t.name == "batch loader"]
    batches.close()
    loader.join(timeout=10)
    assert not loader.is_alive()
    assert next(built) <= 6  # the one taken, the queue's two, and at most one in hand per put


def test_losses_are_read_one_step_late_with_the_same_values() -> None:
    """train_epoch reads each loss after queuing the next step: on_batch gets every batch's loss, in
    order, equal to stepping and reading at once, and the epoch's mean is unchanged."""
    lagged, direct = _model(), _model()
    opt_lagged, _ = make_optimizer(lagged, lr=1e-2)
    opt_direct, _ = make_optimizer(direct, lr=1e-2)
    loss_fn = build_loss("max_margin")
    batches = [_batch(seed) for seed in range(5)]
    seen: list[tuple[int, float]] = []
    stats = train_epoch(lagged, loss_fn, opt_lagged, batches, CPU, on_batch=lambda k, x: seen.append((k, x)))
    expected = [(k, train_step(direct, loss_fn, opt_direct, b, CPU)) for k, b in enumerate(batches, 1)]
    assert seen == expected
    assert stats.batches == 5 and stats.pairs == 5 * 32
    assert stats.loss == pytest.approx(sum(x for _, x in expected) / 5, rel=1e-12)


def test_a_step_may_return_its_loss_unread() -> None:
    """An objective's own step (TVTS) returns a tensor: train_epoch reads it like the default step's."""
    model = _model()
    optimizer, _ = make_optimizer(model, lr=1e-2)
    loss_fn = build_loss("max_margin")
    returned: list[torch.Tensor] = []

    def step(batch: Batch) -> torch.Tensor:
        loss = torch.tensor(float(len(returned) + 1))
        returned.append(loss)
        return loss

    stats = train_epoch(model, loss_fn, optimizer, [_batch(s) for s in range(3)], CPU, step=step)
    assert stats.loss == pytest.approx(2.0) and stats.batches == 3


def test_bench_train_goes_round_its_data_and_reports_the_path(tmp_path: Path) -> None:
    """More steps than batches written: the bench goes round the data epoch by epoch, times every step
    through the real loop and says which optimiser and feed it used."""
    lines: list[str] = []
    steps = DATA_BATCHES + 3
    result = run_bench(
        tmp_path,
        steps=steps,
        d=16,
        videos=4,
        clips=8,
        device_name="cpu",
        log=lines.append,
        precisions=("fp32",),
        sample_seconds=0.01,
    )
    (row,) = result["precisions"]
    assert result["steps"] == steps
    # The ceiling sampled after every timed step too, the median of all samples the one held to.
    between = row["ceiling_between_steps"]
    assert len(between) == steps and all(rate > 0 for rate in between)
    assert row["ceiling_gflops"] == pytest.approx(float(np.median([*row["ceiling_before_after"], *between])))
    assert row["fraction_of_ceiling"] == pytest.approx(row["gflops"] / row["ceiling_gflops"])
    assert any("between the steps; median of all" in line for line in lines)
    assert row["pairs_per_s"] * row["s_per_step"] == pytest.approx(4 * 8)
    assert "Adam (foreach)" in row["path"] and "one step late" in row["path"]
    assert 0 < row["fraction_of_ceiling"]
    assert any(line.startswith(f"{steps} timed steps") for line in lines)
    # Whole passes over the data: the timed steps read the shards as often as a run does.
    assert default_steps(CPU) == DATA_BATCHES and default_steps(torch.device("cuda")) == 5 * DATA_BATCHES
    # Windows of one shard, as a run too large for memory: 4 batches a shard, so the timed steps (batches
    # 2-12 of 8-batch epochs) open the second shard of epoch 1 and the first of epoch 2.
    assert row["shards_read"] == 2
    assert any(line.endswith("shards decoded during the timed steps: 2") for line in lines)
    # The same precision again where every shard fits one window: decoded in the warm-up's epoch, then kept.
    kept = result["kept_shards"]
    assert kept["precision"] == "fp32" and kept["shards_read"] == 0
    assert kept["pairs_per_s"] * kept["s_per_step"] == pytest.approx(4 * 8)
    header = next(i for i, line in enumerate(lines) if line.startswith("fp32 again, the shards kept decoded"))
    assert "shards_in_memory 16" in lines[header] and "(goal" not in lines[header + 1]
    assert lines[header + 2].endswith("shards decoded during the timed steps: 0")


def test_bench_train_times_bf16_with_and_without_the_weight_copies(tmp_path: Path) -> None:
    """On a CPU, bf16 trains through bf16 weight copies; the bench also times those steps against the
    same steps without them, alternating, and prints the ratio; its path line says what ran."""
    lines: list[str] = []
    result = run_bench(
        tmp_path, steps=3, d=16, videos=4, clips=8, device_name="cpu", log=lines.append, precisions=("bf16",),
        sample_seconds=1.0, ceiling_seconds=0.2,
    )  # fmt: skip
    (row,) = result["precisions"]
    # The ceiling's samples between the steps (1 s each) are not the steps' time: milliseconds here, and
    # 0.27 s at worst seen on a loaded 2-core CI machine, so a sample counted in would show at 1 s or more.
    assert len(row["ceiling_between_steps"]) == 3 and row["s_per_step"] < 1.0
    assert row["weight_copies"]
    assert "bf16 weight copies" in row["path"] and "one compiled kernel" in row["path"]
    assert "gated tail compiled" in row["path"]
    comparison = result["copies_against_autocast"]
    assert comparison["copies_s"] > 0 and comparison["autocast_s"] > 0
    assert comparison["speedup"] == pytest.approx(comparison["autocast_s"] / comparison["copies_s"])
    line = next(line for line in lines if line.startswith("bf16 weight copies against autocast"))
    assert f"{comparison['speedup']:.2f}x" in line and "medians of 3" in line
    # Without the copies (fp32 only) there is nothing to compare.
    fp32 = run_bench(
        tmp_path / "fp32", steps=1, d=16, videos=4, clips=8, device_name="cpu", log=lambda _: None,
        precisions=("fp32",), ceiling_seconds=0.2,
    )  # fmt: skip
    assert fp32["copies_against_autocast"] is None


def test_a_row_without_samples_between_its_steps_prints_before_and_after_only() -> None:
    """A GPU row samples its ceiling before and after the steps only (the samples would share the device
    with queued steps): its line says so instead of a range between the steps."""
    from tasks.bench.training import _log_row

    lines: list[str] = []
    row = {
        "precision": "bf16", "pairs_per_s": 1000.0, "s_per_step": 0.5, "gflops": 500.0,
        "ceiling_before_after": (900.0, 1100.0), "ceiling_between_steps": [], "ceiling_gflops": 1000.0,
        "fraction_of_ceiling": 0.5, "load_share": 0.01, "shards_read": 0, "path": "cuda bf16",
    }  # fmt: skip
    _log_row(row, lines.append, goal=False)
    assert "(before / after), median of all 1000.0 -> 50% of it" in lines[0]
    assert "between the steps" not in lines[0]
