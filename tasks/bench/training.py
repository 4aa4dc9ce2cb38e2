"""`howto bench train`: training pairs/s at HowTo100M's batch shape vs a matmul ceiling, same run."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from models.train_loop import pick_device, train_step
from storage.layout import DataRoot
from storage.shards import write_shard
from tasks.training.config import TrainConfig
from tasks.training.data import prefetch
from tasks.training.run import Trainer, build_loss, make_optimizer


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


def matmul_ceiling(n: int, d: int, device: torch.device, seconds: float = 3.0) -> float:
    """GFLOP/s of an fp32 (n x d) @ (d x d) matmul, the shape that dominates a training step."""
    a = torch.randn(n, d, device=device)
    b = torch.randn(d, d, device=device)
    torch.mm(a, b)
    reps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds or reps < 2:
        torch.mm(a, b)
        reps += 1
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return 2.0 * n * d * d * reps / (time.perf_counter() - started) / 1e9


def step_flops(n: int, d: int, d_video: int, d_text: int) -> float:
    """FLOPs of one training step: forward, then backward (weight grads everywhere, input grads except
    for the first layer of each side, whose input is data)."""
    first = n * (d_video + d_text) * d  # video and text fc
    gates = 2 * n * d * d  # both gates
    sim = n * n * d
    forward = first + gates + sim
    backward = first + 2 * gates + 2 * sim
    return 2.0 * (forward + backward)


def run_bench(
    workdir: Path,
    steps: int = 3,
    d: int = 4096,
    videos: int = 32,
    clips: int = 64,
    device_name: str = "auto",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Time `steps` training steps with data loading included (after one warm-up step) and the ceiling."""
    device = pick_device(device_name)
    root = DataRoot.from_any(str(workdir))
    write_bench_pairs(root, videos * (steps + 1), clips)
    cfg = TrainConfig(
        d=d, videos_per_batch=videos, clips_per_video=clips, heldout_fraction=0.0, device=str(device)
    )
    trainer = Trainer(cfg, root)
    model, _ = trainer.build()
    optimizer, _ = make_optimizer(model, cfg.lr)
    loss_fn = build_loss("max_margin")
    n = videos * clips
    ceiling = matmul_ceiling(n, d, device)
    batches = prefetch(trainer.batches(epoch=1))  # the same overlap as a real run
    train_step(model, loss_fn, optimizer, next(batches), device)  # warm-up: allocator, kernels
    load = 0.0
    started = time.perf_counter()
    pairs = 0
    for _ in range(steps):
        t0 = time.perf_counter()
        batch = next(batches)
        load += time.perf_counter() - t0
        train_step(model, loss_fn, optimizer, batch, device)
        pairs += len(batch)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - started
    achieved = step_flops(n, d, 4096, 384) * steps / wall / 1e9
    result: dict[str, Any] = {
        "device": str(device),
        "d": d,
        "batch": n,
        "steps": steps,
        "pairs_per_s": pairs / wall,
        "gflops": achieved,
        "ceiling_gflops": ceiling,
        "fraction_of_ceiling": achieved / ceiling,
        "load_share": load / wall,
        "threads": torch.get_num_threads(),
    }
    log(
        f"device {device}, {torch.get_num_threads()} threads, d={d}, batch {videos} videos x {clips} clips = {n} pairs"
    )
    log(
        f"training: {result['pairs_per_s']:.0f} pairs/s over {steps} steps ({wall / steps:.2f} s/step), "
        f"{achieved:.1f} GFLOP/s"
    )
    log(f"fp32 matmul ceiling ({n}x{d} @ {d}x{d}), measured in this run: {ceiling:.1f} GFLOP/s")
    log(f"achieved / ceiling: {100 * result['fraction_of_ceiling']:.0f}% (goal >= 60%)")
    log(f"data loading (Parquet shards -> batches): {100 * result['load_share']:.1f}% of wall time")
    return result
