"""`howto bench features --device cuda`: many videos through the extractor as the stage runs it on a GPU
(batches across videos, bf16 with folded BatchNorm, compiled, NVDEC where ffmpeg or PyAV can use it, decoders in
parallel), as video-seconds per wall-second and as a share of the device's matmul ceiling in that precision,
next to the reference extractor's way (one video at a time, decode first, fp32 eager) in the same run.

It runs on any device (the tests run it on the CPU at a few seconds of video); the goal line (>= 1000x real
time for both models, decode included) is printed for CUDA only.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from models.compiled import compile_report, cudagraph_skips
from models.encoders import pick_runtime, prepare, usable_cores
from models.resnet2d import build_resnet152
from models.resnext3d import build_resnext101
from tasks.bench.decode_agreement import agreement_line
from tasks.bench.features import (
    SHORT,
    BenchRow,
    decode_line,
    gflop_of,
    make_video,
    matmul_ceiling,
    run_naive,
)
from tasks.bench.peak_memory import PeakMemory
from tasks.features.config import ExtractFeaturesConfig
from tasks.features.decode import SPEC_2D, SPEC_3D, probe_with
from tasks.features.decode import hwaccel_available as cli_hwaccel_available
from tasks.features.decode_av import decoders_share_torch_context
from tasks.features.decode_av import hwaccel_available as av_hwaccel_available
from tasks.features.decoder_choice import cli_installed
from tasks.features.extractor import MODEL_2D, MODEL_3D, Extractor, ExtractorSettings, VideoJob
from tasks.features.pipeline import extractor_settings

GPU_GOAL_REALTIME = 1000.0
COMBOS: tuple[tuple[str, ...], ...] = ((MODEL_2D,), (MODEL_3D,), (MODEL_2D, MODEL_3D))


@dataclass(frozen=True)
class DeviceBench:
    """What one run measured: our rows (2d, 3d, both), the reference rows, the ceiling and memory."""

    device: str
    path: str
    ours: list[BenchRow]
    reference: list[BenchRow]
    ceiling_gflops: float
    host_peak_mb: float
    device_peak_mb: float

    def speedup(self, models: str) -> float:
        ours = next(r for r in self.ours if r.models == models)
        ref = next(r for r in self.reference if r.models == models)
        return ours.realtime / ref.realtime


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{props.name}, {props.total_memory / 2**30:.0f} GiB, compute capability {props.major}.{props.minor}"
    return f"CPU, {usable_cores()} cores"


def run_device_bench(
    device: str,
    workdir: Path,
    seconds: int,
    videos: int,
    log: Callable[[str], None],
    reference_videos: int = 2,
    batch_2d: int | None = None,
    batch_3d: int | None = None,
    ceiling_s: float = 1.0,
    decoder: str = "auto",
) -> DeviceBench:
    """Everything in one run; prints as it goes and returns the numbers (batches and decoder: the stage's
    defaults unless given)."""
    cfg = ExtractFeaturesConfig(device=device, batch_2d=batch_2d, batch_3d=batch_3d, decoder=decoder)
    rt = pick_runtime(device, "auto")
    settings = extractor_settings(cfg, rt)
    log(f"device: {_device_name(rt.device)}; host CPU cores: {usable_cores()}")
    log(
        f"path: {rt.describe()}; batches 2d {settings.batch_2d}, 3d {settings.batch_3d}, "
        f"{'across videos' if settings.across_videos else 'per video'}"
        f"{', padded to full size' if settings.pad_batches else ''}; {settings.decode_workers} decoders; "
        f"decode on {settings.hwaccel or 'the CPU'} through {settings.decoder} ({_gpu_decoders(settings)})"
    )
    source = workdir / f"bench-{seconds}s-360p.mp4"
    make_video(source, seconds)
    warm = workdir / "warmup-2s-360p.mp4"
    make_video(warm, 2)
    paths = []
    for i in range(videos):  # separate names, one file's bytes: every decoder does the same work
        path = workdir / f"video-{i:03d}.mp4"
        os.link(source, path)
        paths.append(path)
    info = probe_with(settings.decoder, str(source))
    duration = info.duration_s
    log(
        f"videos: {videos} x {duration:.0f} s (640x360, 30 fps H.264) = {videos * duration:.0f} video-seconds"
    )
    torch.manual_seed(0)
    nets = {MODEL_2D: build_resnet152(None), MODEL_3D: build_resnext101(None)}
    specs = {MODEL_2D: SPEC_2D, MODEL_3D: SPEC_3D}
    log(decode_line(source, specs, info, settings.hwaccel, settings.decoder)[0])
    if settings.decoder == "pyav-gpu" and settings.hwaccel:
        log(agreement_line(source, specs, info, rt.device, settings.hwaccel))
    ceiling_n = 8192 if rt.device.type == "cuda" else 2048
    if rt.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(rt.device)
    with PeakMemory() as memory:
        encoders = {m: prepare(nets[m], rt) for m in nets}
        ours: list[BenchRow] = []
        ceilings: list[float] = []
        log(
            f"-- ours ({'batches across videos' if settings.across_videos else 'per-video batches'}, decode "
            f"overlapped), each after a warm-up{' (compile, CUDA graphs)' if rt.compiled else ''}:"
        )
        for models in COMBOS:
            extractor = Extractor(
                {m: encoders[m] for m in models}, {m: specs[m] for m in models}, rt, settings
            )
            for _ in range(3 if rt.compiled else 1):
                _run(extractor, [warm])
            if rt.compiled:  # what the warm-ups really built: a failed compile runs eager from then on
                log(compiled_line(encoders, models))
            ceilings.append(matmul_ceiling(rt.dtype, ceiling_n, ceiling_s, rt.device))
            extractor.mixed_batches = 0  # count the measured run's batches only, not the warm-ups'
            start = time.perf_counter()
            rows, decoders = _run(extractor, paths)
            wall = time.perf_counter() - start
            ceilings.append(matmul_ceiling(rt.dtype, ceiling_n, ceiling_s, rt.device))
            gflop = sum(gflop_of(m, rows[m], specs[m].frame_shape(info)) for m in models)
            name = "both" if len(models) == 2 else SHORT[models[0]]
            ours.append(
                BenchRow("ours", name, wall, videos * duration, gflop, (ceilings[-2] + ceilings[-1]) / 2)
            )
            # Which decoder really ran: ffmpeg decodes a stream NVDEC refuses on the CPU, and exits 0.
            decoded = ", ".join(f"{n} on {name}" for name, n in sorted(decoders.items()))
            log(
                _line(ours[-1], rt.precision)
                + f"  ({extractor.mixed_batches} batches mixed videos; videos decoded {decoded})"
            )
        log(
            f"-- the reference way ({len(paths[:reference_videos])} video(s), one at a time, decode first, fp32 eager NCHW):"
        )
        reference = _reference_rows(paths[:reference_videos], nets, device, log, ceiling_s, settings.decoder)
    ceiling = sorted(ceilings)[len(ceilings) // 2]
    device_mb = torch.cuda.max_memory_allocated(rt.device) / 2**20 if rt.device.type == "cuda" else 0.0
    bench = DeviceBench(device, rt.describe(), ours, reference, ceiling, memory.peak_mb, device_mb)
    log(
        f"{rt.precision} matmul ceiling ({ceiling_n}^3) measured around each run: {ceiling / 1000:.1f} TFLOP/s; "
        f"peak host memory (process + ffmpeg decoders): {memory.peak_mb:.0f} MB"
        + (f"; peak device memory: {device_mb:.0f} MB" if rt.device.type == "cuda" else "")
    )
    log("speed-up ours/reference: " + ", ".join(f"{m} {bench.speedup(m):.1f}x" for m in ("2d", "3d", "both")))
    if rt.device.type == "cuda":
        both = next(r for r in ours if r.models == "both")
        met = "met" if both.realtime >= GPU_GOAL_REALTIME else "NOT met"
        log(
            f"goal both models >= {GPU_GOAL_REALTIME:.0f}x real time, decode included: {met} ({both.realtime:.0f}x)"
        )
    return bench


def _gpu_decoders(settings: ExtractorSettings) -> str:
    """Which decoders here decode H.264 on the GPU: the command line's and PyAV's (the stage's choice
    between them is tasks/features/decoder_choice.py)."""
    device, cli = settings.hwaccel or "cuda", cli_installed()
    checks = ((("ffmpeg", cli_hwaccel_available),) if cli else ()) + (("PyAV", av_hwaccel_available),)
    usable = {name: decodes_here(device) for name, decodes_here in checks}
    found = [f"{name} on {device}: {'yes' if ok else 'no'}" for name, ok in usable.items()]
    if usable["PyAV"]:
        # Whether each PyAV decoder creates a CUDA context per video or works in torch's (decode_av._open).
        shared = decoders_share_torch_context(device)
        found.append(
            f"PyAV decoders in torch's CUDA context: {'yes' if shared else 'no, one context per video'}"
        )
    return "; ".join(found) + ("" if cli else "; no ffmpeg executable")


def compiled_line(encoders: dict[str, torch.nn.Module], models: tuple[str, ...]) -> str:
    """After a row's warm-ups: how each of its encoders runs, and the graphs inductor ran without CUDA
    graphs so far."""
    states = ", ".join(f"{SHORT[m]} {compile_report(encoders[m])}" for m in models)
    return f"   after the warm-up: {states}; graphs run without CUDA graphs: {cudagraph_skips()}"


def _run(extractor: Extractor, paths: list[Path]) -> tuple[dict[str, int], dict[str, int]]:
    """Rows per model and videos per decoder that ran, over all videos; any failed video stops the bench
    (its numbers would lie)."""
    rows = dict.fromkeys(extractor.specs, 0)
    decoders: Counter[str] = Counter()
    for result in extractor.run([VideoJob(p.stem, str(p)) for p in paths]):
        if result.status != "ok":
            raise RuntimeError(f"bench extraction of {result.video_id} failed: {result.error}")
        for model in rows:
            rows[model] += len(result.rows[model].vectors)
        decoders[result.decoder] += 1
    return rows, dict(decoders)


def _reference_rows(
    paths: list[Path],
    nets: dict[str, torch.nn.Module],
    device: str,
    log: Callable[[str], None],
    ceiling_s: float,
    decoder: str = "ffmpeg",
) -> list[BenchRow]:
    """2d and 3d one video after another; `both` is their sum (the reference runs its two models apart)."""
    totals: dict[str, BenchRow] = {}
    for path in paths:
        for model in (MODEL_2D, MODEL_3D):
            row = run_naive(path, model, nets[model], device, ceiling_s, decoder)
            seen = totals.get(row.models)
            totals[row.models] = row if seen is None else _add(seen, row)
    r2d, r3d = totals["2d"], totals["3d"]
    both = _add(r2d, r3d, models="both", video_s=r2d.video_s)
    for row in (r2d, r3d, both):
        log(_line(row, "fp32"))
    return [r2d, r3d, both]


def _add(a: BenchRow, b: BenchRow, models: str | None = None, video_s: float | None = None) -> BenchRow:
    """Two runs one after the other: times and work add up; the same video-seconds when given."""
    seconds = a.video_s + b.video_s if video_s is None else video_s
    return BenchRow(
        a.path,
        models or a.models,
        a.wall_s + b.wall_s,
        seconds,
        a.gflop + b.gflop,
        (a.ceiling + b.ceiling) / 2,
    )


def _line(r: BenchRow, precision: str) -> str:
    return (
        f"{r.path:<5} {r.models:<4} {r.wall_s:7.1f} s wall  {r.realtime:8.1f}x real time  "
        f"{r.gflops / 1000:7.2f} TFLOP/s ({100 * r.gflops / r.ceiling:4.1f}% of the {precision} ceiling)"
    )
