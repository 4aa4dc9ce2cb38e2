"""`howto bench train`: training pairs/s at HowTo100M's batch shape per precision (fp32, and bf16 where the
hardware has it), each against its own precision's matmul ceiling measured around it in the same run."""

from __future__ import annotations

import itertools
import resource
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from models.cpu_allocator import keep_freed_memory
from models.cpu_kernels import compile_failure
from models.encoders import cpu_features, pick_device
from models.gemm_layout import c_transpose_available, row_major_copies_failed
from models.mixed_adam import MixedAdam
from models.onednn_gemm import fp32_gemm
from models.train_loop import (
    Batch,
    native_bf16,
    pick_precision,
    row_major_gemms,
    train_epoch,
    train_step,
)
from storage.layout import DataRoot
from storage.shards import write_shard
from tasks.bench.ceiling import gemm_ceiling
from tasks.bench.ceiling_timing import CEILING_SAMPLE_SECONDS, CEILING_SECONDS
from tasks.bench.isa import isa_line
from tasks.train.config import TrainConfig
from tasks.train.data import loads_beside_steps, prefetch
from tasks.train.run import Trainer, build_loss, make_optimizer


def _vectors(matrix: np.ndarray) -> pa.ListArray:
    n, dim = matrix.shape
    return pa.ListArray.from_arrays(
        pa.array(np.arange(n + 1, dtype=np.int32) * dim), pa.array(matrix.reshape(-1))
    )


def write_bench_pairs(
    root: DataRoot,
    videos: int,
    clips: int,
    d_video: int = 4096,
    d_text: int = 384,
    shards: int = 2,
    seed: int = 0,
) -> None:
    """Random clip pairs + cached text vectors in the data root, so loading is the real Parquet path."""
    rng = np.random.default_rng(seed)
    per = -(-videos // shards)
    for shard in range(shards):
        vids = [f"bench{v:05d}" for v in range(shard * per, min(videos, (shard + 1) * per))]
        n = len(vids) * clips
        ids = [f"{v}_{i:04d}" for v in vids for i in range(clips)]
        table = pa.table(
            {
                "clip_id": ids,
                "video_id": [v for v in vids for _ in range(clips)],
                "task_id": pa.nulls(n, pa.string()),
                "idx": pa.array(np.tile(np.arange(clips, dtype=np.int32), len(vids))),
                "start_ms": pa.array(np.tile(np.arange(clips) * 4000, len(vids))),
                "end_ms": pa.array(np.tile(np.arange(1, clips + 1) * 4000, len(vids))),
                "text": [f"caption {i}" for i in range(n)],
                "vector": _vectors(rng.standard_normal((n, d_video)).astype(np.float16)),
            }
        )
        write_shard(root, "clip_pairs", shard, table, config_hash="bench", code_version="bench", rows_in=n)
        text = pa.table(
            {
                "clip_id": ids,
                "encoder": ["random"] * n,
                "vector": _vectors(rng.standard_normal((n, d_text)).astype(np.float32)),
            }
        )
        write_shard(
            root, "text_embeddings", shard, text, config_hash="bench", code_version="bench", rows_in=n
        )


def matmul_ceiling(
    n: int, d: int, device: torch.device, seconds: float = CEILING_SECONDS, dtype: torch.dtype = torch.float32
) -> float:
    """GFLOP/s of an (n x d) @ (d x d) GEMM in `dtype` on the fastest backend, the shape that dominates a
    training step."""
    return gemm_ceiling(n, d, d, dtype, device, seconds).gflops


def step_flops(n: int, d: int, d_video: int, d_text: int) -> float:
    """FLOPs of one training step: forward, then backward (weight grads everywhere, input grads except
    for the first layer of each side, whose input is data)."""
    first = n * (d_video + d_text) * d  # video and text fc
    gates = 2 * n * d * d  # both gates
    sim = n * n * d
    forward = first + gates + sim
    backward = first + 2 * gates + 2 * sim
    return 2.0 * (forward + backward)


def _path(precision: str, device: torch.device, optimizer: torch.optim.Optimizer) -> str:
    if isinstance(optimizer, MixedAdam):
        kernel = "one compiled kernel" if optimizer.compiled else "the eager formulas (the compile failed)"
        adam = (
            f"Linear layers on bf16 weight copies written by Adam's update ({kernel}: bf16 gradient in, "
            "fp32 master and moments), fused Adam for the rest"
        )
        return _describe(precision, device, adam, "bf16 matmuls (autocast for what has no copies)")
    form = (
        "fused"
        if optimizer.defaults.get("fused")
        else "foreach"
        if optimizer.defaults.get("foreach")
        else "loop"
    )
    matmuls = "autocast matmuls in bf16 (weights cast every step)" if precision == "bf16" else ""
    return _describe(precision, device, f"Adam ({form})", matmuls)


def _describe(precision: str, device: torch.device, adam: str, matmuls: str) -> str:
    feed = (
        "batches page-locked in the loader thread, video copied and"
        if device.type == "cuda"
        else "batches built in a loader thread, video"
        if loads_beside_steps(device)
        else "batches built between steps (torch's threads use every core), video"
    ) + " read as the stored float16, "
    heap = "freed memory kept in the heap, " if device.type == "cpu" and keep_freed_memory() else ""
    each = f"{feed}{heap}{adam}, each loss read one step late, eager"
    if precision == "bf16":
        copier = (
            "C kernel" if c_transpose_available() else "block" if row_major_copies_failed() else "compiled"
        )
        layout = (
            f"weight-gradient GEMMs on row-major copies (AMX; {copier} transpose), "
            if row_major_gemms(device, precision)
            else ""
        )
        return (
            f"{device.type} bf16: {matmuls}, {layout}{_tail(device)}fp32 master weights and loss (fused "
            f"max-margin), {each}"
        )
    return f"{device.type} fp32: {_fp32_matmuls(device)}, {each}"


def _fp32_matmuls(device: torch.device) -> str:
    """On a CPU, with the library the step's large GEMMs run on (models/onednn_gemm.py) and why."""
    return f"matmuls in fp32 ({fp32_gemm().describe()})" if device.type == "cpu" else "matmuls in fp32"


def _tail(device: torch.device) -> str:
    if device.type != "cpu":
        return ""
    failed = compile_failure("gated tail forward") or compile_failure("gated tail backward")
    return "gated tail eager (its compile failed), " if failed else "gated tail compiled, "


def _log_row(row: dict[str, Any], log: Callable[[str], None], goal: bool = True) -> None:
    """A row's lines; `goal`: the row the 60% goal is held to (its path line too), not the kept-shards one."""
    before, after = row["ceiling_before_after"]
    between = row["ceiling_between_steps"]
    precision = row["precision"]
    if goal:
        log(f"path: {row['path']}")
    log(
        f"  {precision}: {row['pairs_per_s']:.0f} pairs/s ({row['s_per_step']:.2f} s/step), "
        f"{row['gflops']:.1f} GFLOP/s; {precision} matmul ceiling {before:.1f} / {after:.1f} GFLOP/s "
        f"(before / after), "
        + (f"{min(between):.0f}-{max(between):.0f} between the steps; " if between else "")
        + f"median of all {row['ceiling_gflops']:.1f} -> {100 * row['fraction_of_ceiling']:.0f}% of it"
        + (" (goal >= 60%)" if goal else "")
    )
    log(
        f"  data loading (Parquet shards -> batches): {100 * row['load_share']:.1f}% of wall time; "
        f"shards decoded during the timed steps: {row['shards_read']}"
    )


DATA_BATCHES = 8  # batches of random pairs written; longer runs go round them again, epoch by epoch


def default_steps(device: torch.device) -> int:
    """Timed steps when the command line gives none: whole passes over the DATA_BATCHES batches written, so
    the timed steps read every shard once a pass, as a run's epoch does (the warm-up step's read is one
    pass earlier). One pass on a CPU, whose steps take seconds; five on a GPU, whose steps take
    milliseconds."""
    return DATA_BATCHES * (5 if device.type == "cuda" else 1)


def _epochs(trainer: Trainer) -> Iterator[Batch]:
    for epoch in itertools.count(1):
        yield from trainer.batches(epoch=epoch)


def _time_precision(
    trainer: Trainer,
    cfg: TrainConfig,
    precision: str,
    steps: int,
    device: torch.device,
    sample_seconds: float = CEILING_SAMPLE_SECONDS,
    ceiling_seconds: float = CEILING_SECONDS,
) -> dict[str, Any]:
    """Steps of one precision (one warm-up first), held to its matmul ceiling measured before, after and
    between the steps.

    A shared machine's speed drifts by 10% and more within a run, on a scale of seconds, so a ceiling
    measured only before and after the steps held them to another machine than the one they ran on. A
    sample after each step tracks the drift; the time it takes is left out of the steps' wall time
    (on a CPU train_epoch's on_batch runs between steps, outside the step and its batch's loading). On a
    GPU on_batch runs while the next step is queued, so a sample there would share the device with a
    step: the ceiling is measured before and after only."""
    torch.manual_seed(cfg.seed)
    model, _ = trainer.build()
    optimizer, _ = make_optimizer(model, cfg.lr, precision=precision)
    loss_fn = build_loss("max_margin", fused=precision == "bf16")
    n, d = cfg.videos_per_batch * cfg.clips_per_video, cfg.d
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    # The same loader thread, staging and loop as a real run (train_epoch), over steps + 1 batches.
    batches = prefetch(itertools.islice(_epochs(trainer), steps + 1), device)
    train_step(model, loss_fn, optimizer, next(batches), device, precision)  # warm-up: allocator, kernels
    read_before = trainer.shards_read
    before = matmul_ceiling(n, d, device, seconds=ceiling_seconds, dtype=dtype)
    between: list[float] = []
    sampling = 0.0

    def sample(_batch: int, _loss: float) -> None:
        nonlocal sampling
        started = time.perf_counter()
        between.append(matmul_ceiling(n, d, device, seconds=sample_seconds, dtype=dtype))
        sampling += time.perf_counter() - started

    on_batch = sample if device.type == "cpu" else None
    stats = train_epoch(model, loss_fn, optimizer, batches, device, on_batch=on_batch, precision=precision)
    wall, load, pairs = stats.seconds - sampling, stats.load_seconds, stats.pairs
    after = matmul_ceiling(n, d, device, seconds=ceiling_seconds, dtype=dtype)
    achieved = step_flops(n, d, 4096, 384) * stats.batches / wall / 1e9
    ceiling = float(np.median([before, *between, after]))
    return {
        "precision": precision,
        "weight_copies": isinstance(optimizer, MixedAdam),
        "path": _path(precision, device, optimizer),
        "pairs_per_s": pairs / wall,
        "s_per_step": wall / max(stats.batches, 1),
        "gflops": achieved,
        "ceiling_gflops": ceiling,
        "ceiling_before_after": (before, after),
        "ceiling_between_steps": between,
        "fraction_of_ceiling": achieved / ceiling,
        "load_share": load / wall,
        "shards_read": trainer.shards_read - read_before,
    }


def _copies_against_autocast(
    trainer: Trainer, cfg: TrainConfig, steps: int, device: torch.device
) -> dict[str, float]:
    """bf16 steps with the weight copies and without them (autocast's casts, fused Adam), alternating
    step by step, who goes first alternating too, on two models built alike and the same batches (built
    beforehand: compute only). Run one after the other, the two kinds of step differ by less than the
    machine drifts between them; alternated, the drift falls on both alike."""
    batches = list(itertools.islice(_epochs(trainer), min(steps, DATA_BATCHES)))
    loss_fn = build_loss("max_margin", fused=True)
    runs = {}
    for copies in (True, False):
        torch.manual_seed(cfg.seed)
        model, _ = trainer.build()
        runs[copies] = (model, make_optimizer(model, cfg.lr, precision="bf16", weight_copies=copies)[0])
    times: dict[bool, list[float]] = {True: [], False: []}
    for k in range(steps + 1):  # the first round warms up
        for copies in (True, False) if k % 2 == 0 else (False, True):
            model, optimizer = runs[copies]
            started = time.perf_counter()
            train_step(model, loss_fn, optimizer, batches[k % len(batches)], device, "bf16")
            if k:
                times[copies].append(time.perf_counter() - started)
    with_copies, without = float(np.median(times[True])), float(np.median(times[False]))
    return {"copies_s": with_copies, "autocast_s": without, "speedup": without / with_copies}


def run_bench(
    workdir: Path,
    steps: int | None = None,
    d: int = 4096,
    videos: int = 32,
    clips: int = 64,
    device_name: str = "auto",
    log: Callable[[str], None] = print,
    precisions: tuple[str, ...] | None = None,
    compare_copies: bool = True,
    sample_seconds: float = CEILING_SAMPLE_SECONDS,
    ceiling_seconds: float = CEILING_SECONDS,
) -> dict[str, Any]:
    """Time `steps` training steps per precision (fp32, and bf16 where native unless `precisions` says
    otherwise) with data loading included, each against its own precision's matmul ceiling. Where bf16
    trains through bf16 weight copies (models/mixed_adam.py), `compare_copies` times its steps against
    the same steps without them, alternating (_copies_against_autocast)."""
    device = pick_device(device_name)
    steps = steps or default_steps(device)
    if precisions is None:
        precisions = ("fp32", "bf16") if native_bf16(device) else ("fp32",)
    root = DataRoot.from_any(str(workdir))
    write_bench_pairs(root, videos * min(steps + 1, DATA_BATCHES), clips)
    # One shard a window: a run whose shards do not all fit in memory (HowTo100M's do not) reads each
    # shard every epoch, and so do the timed steps here. Two shards would fit the default window, and a run
    # keeps such data decoded from its first epoch on (Trainer.pair_windows): not what is measured here.
    cfg = TrainConfig(
        d=d, videos_per_batch=videos, clips_per_video=clips, heldout_fraction=0.0, device=str(device),
        shards_in_memory=1,
    )  # fmt: skip
    trainer = Trainer(cfg, root)
    n = videos * clips
    flags = " ".join(cpu_features()) or "unknown"
    log(f"device {device}, {torch.get_num_threads()} threads; CPU features: {flags}")
    log(f"native bf16: {'yes' if native_bf16(device) else 'no (bf16 would be emulated: fp32 only)'}")
    log(f"precision auto takes here: {pick_precision(device)}")
    log(isa_line())
    log(f"d={d}, batch {videos} videos x {clips} clips = {n} pairs; ceiling: ({n}x{d}) @ ({d}x{d}) matmul")
    log(f"{steps} timed steps per precision, after one warm-up step")
    for precision in precisions:
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        backends = gemm_ceiling(n, d, d, dtype, device, seconds=min(1.0, ceiling_seconds)).describe()
        log(f"{precision} ceiling by backend (the best is the ceiling), GFLOP/s: {backends}")
    rows = []
    for precision in precisions:
        rows.append(_time_precision(trainer, cfg, precision, steps, device, sample_seconds, ceiling_seconds))
        _log_row(rows[-1], log)
    # The precision auto takes once more, on a run whose shards all fit one window: decoded in its first
    # epoch and kept (Trainer.pair_windows), so its later epochs read nothing.
    auto = pick_precision(device)
    kept_cfg = cfg.model_copy(update={"shards_in_memory": TrainConfig().shards_in_memory})
    kept_precision = auto if auto in precisions else precisions[-1]
    kept = _time_precision(
        Trainer(kept_cfg, root), kept_cfg, kept_precision, steps, device, sample_seconds, ceiling_seconds
    )
    log(
        f"{kept['precision']} again, the shards kept decoded from the first epoch on (a run whose training "
        f"shards all fit one window, shards_in_memory {kept_cfg.shards_in_memory}):"
    )
    _log_row(kept, log, goal=False)
    speed = {row["precision"]: row["pairs_per_s"] for row in rows}
    if "fp32" in speed and "bf16" in speed:
        log(f"bf16 / fp32 speed: {speed['bf16'] / speed['fp32']:.2f}x")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    log(f"peak RSS of this process: {peak:.0f} MB")
    comparison = None
    if compare_copies and any(row["weight_copies"] for row in rows):
        comparison = _copies_against_autocast(trainer, cfg, steps, device)
        log(
            f"bf16 weight copies against autocast's casts, the same steps alternating on two models "
            f"(compute only, medians of {steps}): {comparison['copies_s']:.3f} against "
            f"{comparison['autocast_s']:.3f} s a step -> {comparison['speedup']:.2f}x the speed"
        )
    first = rows[0]
    return {
        "copies_against_autocast": comparison,
        "kept_shards": kept,
        "device": str(device),
        "d": d,
        "batch": n,
        "steps": steps,
        "threads": torch.get_num_threads(),
        "peak_rss_mb": peak,
        "precisions": rows,
        # The first precision's numbers at the top level, as before.
        **{
            k: first[k]
            for k in ("pairs_per_s", "gflops", "ceiling_gflops", "fraction_of_ceiling", "load_share")
        },
    }
