"""`howto bench features`: our pipelined bf16 path vs a naive fp32 decode-first path on a generated video."""

from __future__ import annotations

import resource
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.encoders import (
    RESNET152_GFLOP_PER_FRAME,
    RESNEXT101_GFLOP_PER_CLIP,
    encode,
    pick_runtime,
    prepare,
)
from models.resnet2d import build_resnet152
from models.resnext3d import build_resnext101
from tasks.features.decode import SPEC_2D, SPEC_3D, probe, stream_frames
from tasks.features.extractor import MODEL_2D, MODEL_3D, Extractor, ExtractorSettings, VideoJob


@dataclass
class BenchRow:
    """One measured run: what, how long, and the work it did."""

    path: str  # "ours" | "naive"
    models: str  # "2d" | "3d" | "both"
    wall_s: float
    video_s: float
    gflop: float

    @property
    def realtime(self) -> float:
        return self.video_s / self.wall_s

    @property
    def gflops(self) -> float:
        return self.gflop / self.wall_s


def make_video(path: Path, seconds: int) -> None:
    """A 640x360 30 fps H.264 test pattern with motion, like a typical 360p download."""
    cmd = [
        "ffmpeg",
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size=640x360:rate=30:duration={seconds}",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        str(path),
    ]
    subprocess.run(cmd, check=True)


def matmul_ceiling(dtype: torch.dtype, n: int = 2048, seconds: float = 1.0) -> float:
    """GFLOP/s of a square matmul (the practical compute ceiling of this machine in this dtype)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        runs += 1
    return 2 * n**3 * runs / (time.perf_counter() - start) / 1e9


def _gflop(model: str, rows: int, shape: tuple[int, ...]) -> float:
    # Forward cost scales with pixels: the reference numbers are for 224x224 frames and 112x112 clips.
    if model == MODEL_2D:
        return rows * RESNET152_GFLOP_PER_FRAME * shape[0] * shape[1] / (224 * 224)
    return rows * RESNEXT101_GFLOP_PER_CLIP * shape[0] * shape[1] / (112 * 112)


def run_ours(video: Path, models: tuple[str, ...], nets: dict[str, torch.nn.Module]) -> BenchRow:
    """The pipelined path: streaming decode threads, bf16 (if supported), channels_last, batches."""
    rt = pick_runtime("cpu", "auto", channels_last=True)
    specs = {MODEL_2D: SPEC_2D, MODEL_3D: SPEC_3D}
    extractor = Extractor(
        {m: prepare(nets[m], rt) for m in models}, {m: specs[m] for m in models}, rt, ExtractorSettings()
    )
    info = probe(str(video))
    start = time.perf_counter()
    [result] = list(extractor.run([VideoJob("bench", str(video))]))
    wall = time.perf_counter() - start
    if result.status != "ok":
        raise RuntimeError(f"bench extraction failed: {result.error}")
    gflop = sum(_gflop(m, len(result.rows[m].vectors), specs[m].frame_shape(info)) for m in models)
    return BenchRow(
        "ours",
        "both" if len(models) == 2 else ("2d" if models[0] == MODEL_2D else "3d"),
        wall,
        info.duration_s,
        gflop,
    )


def run_naive(video: Path, model: str, net: torch.nn.Module) -> BenchRow:
    """The straightforward path: decode the whole video into memory, then fp32 NCHW batches."""
    rt = pick_runtime("cpu", "fp32", channels_last=False)
    net = prepare(net, rt)
    info = probe(str(video))
    spec = SPEC_2D if model == MODEL_2D else SPEC_3D
    start = time.perf_counter()
    frames = np.concatenate(list(stream_frames(str(video), spec, info, timeout_s=3600)))
    if model == MODEL_3D:
        pad = -len(frames) % 16
        frames = np.concatenate([frames, np.zeros((pad, *frames.shape[1:]), np.uint8)])
        frames = frames.reshape(-1, 16, *frames.shape[1:])
    batch = 16 if model == MODEL_2D else 8
    for i in range(0, len(frames), batch):
        encode(net, frames[i : i + batch], rt)
    wall = time.perf_counter() - start
    return BenchRow(
        "naive",
        "2d" if model == MODEL_2D else "3d",
        wall,
        info.duration_s,
        _gflop(model, len(frames), spec.frame_shape(info)),
    )


def peak_rss_mb() -> tuple[float, float]:
    """Peak resident memory of this process and of its largest finished child (ffmpeg), in MB."""
    return (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    )


def run_bench(workdir: Path, seconds: int, log: Callable[[str], None]) -> dict[str, object]:
    """Everything in one run; returns the numbers that `howto bench features` prints."""
    video = workdir / f"bench-{seconds}s-360p.mp4"
    make_video(video, seconds)
    log(f"video: {video.name} ({seconds} s, 640x360, 30 fps); torch threads: {torch.get_num_threads()}")
    ceilings = {"fp32": matmul_ceiling(torch.float32)}
    rt = pick_runtime("cpu", "auto")
    if rt.precision == "bf16":
        ceilings["bf16"] = matmul_ceiling(torch.bfloat16)
    log("matmul ceiling: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in ceilings.items()))
    torch.manual_seed(0)
    nets = {MODEL_2D: build_resnet152(None), MODEL_3D: build_resnext101(None)}
    rows: list[BenchRow] = []
    for models in ((MODEL_2D,), (MODEL_3D,), (MODEL_2D, MODEL_3D)):
        rows.append(run_ours(video, models, nets))
        log(_line(rows[-1], ceilings[rt.precision]))
    peak_ours = peak_rss_mb()
    for model in (MODEL_2D, MODEL_3D):
        rows.append(run_naive(video, model, nets[model]))
        log(_line(rows[-1], ceilings["fp32"]))
    naive_2d, naive_3d = rows[-2], rows[-1]
    # The naive path is sequential by construction, so both models cost the sum of the two runs.
    rows.append(
        BenchRow(
            "naive",
            "both",
            naive_2d.wall_s + naive_3d.wall_s,
            naive_2d.video_s,
            naive_2d.gflop + naive_3d.gflop,
        )
    )
    log(_line(rows[-1], ceilings["fp32"]) + "  (sum of the two naive runs)")
    ratios = {
        m: _find(rows, "ours", m).realtime / _find(rows, "naive", m).realtime for m in ("2d", "3d", "both")
    }
    log("speed-up ours/naive: " + ", ".join(f"{m} {r:.2f}x" for m, r in ratios.items()))
    both = _find(rows, "ours", "both").realtime
    log(
        f"goal both >= 5x real time: {'met' if both >= 5 else 'NOT met'} ({both:.2f}x); "
        f"goal >= 2x naive: {'met' if ratios['both'] >= 2 else 'NOT met'} ({ratios['both']:.2f}x)"
    )
    peak_all = peak_rss_mb()
    log(
        f"peak RSS: after our runs {peak_ours[0]:.0f} MB, after naive runs {peak_all[0]:.0f} MB "
        f"(largest ffmpeg child {peak_all[1]:.0f} MB)"
    )
    return {"rows": rows, "ceilings": ceilings, "ratios": ratios, "peak_rss_mb": (peak_ours, peak_all)}


def _find(rows: list[BenchRow], path: str, models: str) -> BenchRow:
    return next(r for r in rows if r.path == path and r.models == models)


def _line(r: BenchRow, ceiling: float) -> str:
    return (
        f"{r.path:<5} {r.models:<4} {r.wall_s:7.1f} s wall  {r.realtime:6.2f}x real time  "
        f"{r.gflops:6.0f} GFLOP/s ({100 * r.gflops / ceiling:3.0f}% of matmul ceiling)"
    )
