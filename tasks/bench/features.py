"""`howto bench features`: the path taken on this CPU, each model's share of the matmul ceiling of its
precision (measured around it in the same run), and video-seconds per second end to end: our pipelined
path in a worker process (with its peak memory) vs a naive fp32 decode-first path."""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import queue
import resource
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.cpu_allocator import keep_freed_memory
from models.cpu_precision import cpu_bf16, cpu_bf16_supported
from models.encoders import (
    RESNET152_GFLOP_PER_FRAME,
    RESNEXT101_GFLOP_PER_CLIP,
    Runtime,
    cpu_features,
    encode,
    pick_runtime,
    prepare,
    usable_cores,
)
from models.resnet2d import build_resnet152
from models.resnext3d import build_resnext101
from tasks.bench.ceiling import gemm_ceiling
from tasks.bench.isa import isa_line
from tasks.bench.peak_memory import PeakMemory
from tasks.features import decode_av
from tasks.features.decode import (
    SPEC_2D,
    SPEC_3D,
    DecodeReport,
    StreamSpec,
    VideoInfo,
    decode_outputs,
    planar_rgb_exact,
    probe_with,
)
from tasks.features.decoder_choice import cli_installed, resolve
from tasks.features.extractor import MODEL_2D, MODEL_3D, Extractor, ExtractorSettings, VideoJob

SHORT = {MODEL_2D: "2d", MODEL_3D: "3d"}
_PRECISION = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
# A 640x360 video's inputs: 2D frames at short side 224, 3D clips centre-cropped to 112.
BENCH_INFO = VideoInfo(640, 360, 0.0)


@dataclass
class BenchRow:
    """One measured run: what, how long, the work it did, and the ceiling measured around it."""

    path: str  # "ours" | "naive"
    models: str  # "2d" | "3d" | "both"
    wall_s: float
    video_s: float
    gflop: float
    ceiling: float = 0.0
    # The slowest and fastest of the ceiling's samples around the run (0: one sample): on a shared machine
    # a 1-s GEMM varies by +-10%, and the share is only as exact as its ceiling.
    ceiling_low: float = 0.0
    ceiling_high: float = 0.0
    # The shares of every round this row was the median of (median_round), in the order they ran.
    round_shares: list[float] = field(default_factory=list)

    @property
    def realtime(self) -> float:
        return self.video_s / self.wall_s

    @property
    def share(self) -> float:
        """GFLOP/s over the ceiling measured around the run."""
        return self.gflops / self.ceiling

    @property
    def gflops(self) -> float:
        return self.gflop / self.wall_s


def make_video(path: Path, seconds: int) -> None:
    """A 640x360 30 fps H.264 test pattern with motion, like a typical 360p download (through PyAV's
    libraries on a host without the ffmpeg executable, such as a GPU image)."""
    if not cli_installed():
        make_video_pyav(path, seconds)
        return
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


def make_video_pyav(path: Path, seconds: int) -> None:
    """make_video through PyAV: the same lavfi test pattern, encoded by the wheel's libx264."""
    import av

    graph = av.filter.Graph()
    source = graph.add("testsrc2", f"size=640x360:rate=30:duration={seconds}")
    sink = graph.add("buffersink")
    source.link_to(sink)
    graph.configure()
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30, options={"preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        while True:
            try:
                frame = sink.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                break
            out.mux(stream.encode(frame.reformat(format="yuv420p")))
        out.mux(stream.encode(None))


def matmul_ceiling(
    dtype: torch.dtype, n: int = 2048, seconds: float = 1.0, device: torch.device | str = "cpu"
) -> float:
    """GFLOP/s of a square GEMM on the fastest backend (the practical compute ceiling in this dtype)."""
    return gemm_ceiling(n, n, n, dtype, device, seconds).gflops


def ceiling_around(
    dtype: torch.dtype,
    windows: int = 3,
    seconds: float = 1.0,
    n: int = 2048,
    device: torch.device | str = "cpu",
) -> list[float]:
    """`windows` ceiling samples of `seconds` each: taken before and after a run, their median is the
    ceiling the run is held to and their spread says how far the share can be trusted."""
    return [matmul_ceiling(dtype, n, seconds, device) for _ in range(windows)]


def held_to(row: BenchRow, samples: list[float]) -> BenchRow:
    """`row` with its ceiling set from the samples taken around it (median, slowest, fastest)."""
    row.ceiling = statistics.median(samples)
    row.ceiling_low, row.ceiling_high = min(samples), max(samples)
    return row


def gflop_of(model: str, rows: int, shape: tuple[int, ...]) -> float:
    # Forward cost scales with pixels: the reference numbers are for 224x224 frames and 112x112 clips.
    if model == MODEL_2D:
        return rows * RESNET152_GFLOP_PER_FRAME * shape[0] * shape[1] / (224 * 224)
    return rows * RESNEXT101_GFLOP_PER_CLIP * shape[0] * shape[1] / (112 * 112)


def decode_rate(
    path: Path,
    specs: dict[str, StreamSpec],
    info: VideoInfo,
    hwaccel: str | None,
    report: DecodeReport | None = None,
    decoder: str = "ffmpeg",
) -> tuple[float, float]:
    """Video-seconds decoded per CPU-second of the decoder and per wall-second, one video into all outputs;
    `report` says which decoder ran (see decode_outputs)."""
    warm_decode_checks(decoder)
    # The decoder's work wherever it runs: ffmpeg's processes plus, in this one, the readers that turn its
    # planar output into RGB; PyAV's threads. This process does nothing else meanwhile.
    before = _cpu_seconds()
    start = time.perf_counter()
    # A hardware decoder that fails mid-stream decodes the file again on the CPU: that time counts too.
    for _ in decode_outputs(
        str(path), specs, info, 3600, hwaccel, report, on_restart=lambda reason: None, decoder=decoder
    ):
        pass
    if decoder == "pyav-gpu" and torch.cuda.is_initialized():
        torch.cuda.synchronize()  # its frames are converted on the GPU, asynchronously: count that work
    wall = time.perf_counter() - start
    cpu = _cpu_seconds() - before  # ffmpeg has been waited for: it counts here
    return info.duration_s / max(cpu, 1e-3), info.duration_s / max(wall, 1e-3)


def warm_decode_checks(decoder: str) -> None:
    """Run the decoder's once-per-process checks (which decode small test clips, about 0.5 s) now, so that
    they are not timed as part of a video's decode: a worker pays them once and then runs for hours."""
    exact = planar_rgb_exact if decoder == "ffmpeg" else decode_av.planar_rgb_exact
    for kind in ("rgb_scaled", "yuv_odd_width"):
        exact(kind)


def _cpu_seconds() -> float:
    """CPU seconds of this process, its waited-for children (ffmpeg's processes) and its running PyAV
    decoding children (pyav-child keeps them between videos) so far."""
    from tasks.features.decode_child import live_cpu_seconds

    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage) + live_cpu_seconds()


def decode_line(
    path: Path, specs: dict[str, StreamSpec], info: VideoInfo, hwaccel: str | None, decoder: str = "ffmpeg"
) -> tuple[str, float]:
    """The decode ceiling in words (one video decoded into all outputs, scaled to this machine's cores),
    and the video-seconds the decoder decodes per CPU-second."""
    report = DecodeReport()
    per_cpu_s, per_wall_s = decode_rate(path, specs, info, hwaccel, report, decoder)
    who = "ffmpeg" if decoder == "ffmpeg" else "PyAV"
    cores = usable_cores()
    ran = "the CPU" if report.decoder == "cpu" else report.decoder
    if hwaccel and report.fallback:  # the decoder that really ran, and why it was not the one asked for
        ran += f" ({hwaccel} gave up: {report.fallback})"
    line = (
        f"decode alone (one {who} decode per video, {' + '.join(SHORT[m] for m in specs)} outputs, on "
        f"{ran}): {per_wall_s:.0f}x real time per decoder, {per_cpu_s:.0f}x per CPU-second "
        f"of {who}, so at most {per_cpu_s * cores:.0f}x real time from {cores} cores' {who} work"
    )
    # NVDEC's engines are a fixed number per GPU: the cores' share is then only one of two limits.
    return line + (
        " (the GPU's decode engines may cap it lower)" if report.decoder != "cpu" else ""
    ), per_cpu_s


def decode_cpu_share(realtime: float, decoded_per_cpu_s: float, cores: int) -> float:
    """The share of all cores that ffmpeg takes to decode at `realtime` video-seconds per second: CPU time
    the models cannot have, so end to end stays under the model alone by about this much."""
    return realtime / decoded_per_cpu_s / cores


def decode_bound_share(
    row: BenchRow,
    model_gflop: dict[str, float],
    alone_share: dict[str, float],
    decoded_per_cpu_s: float,
    cores: int,
) -> float:
    """The best share of the ceiling `row` could reach end to end on these cores: each model at its share
    alone, plus the decoder's CPU time taken from the same cores (nothing overlaps for free when both use
    every core). In ceiling units: G / (sum of g_m / s_m + decode CPU-seconds / cores x ceiling), with
    g_m each model's GFLOP in the row and s_m its share alone; the row's own ceiling."""
    compute = sum(g / alone_share[m] for m, g in model_gflop.items())
    decode = row.video_s / decoded_per_cpu_s / cores * row.ceiling
    return row.gflop / (compute + decode)


def bench_input(model: str, batch: int) -> tuple[np.ndarray, float]:
    """A synthetic uint8 batch the size of a 360p video's inputs, and its forward cost in GFLOP."""
    shape = SPEC_2D.frame_shape(BENCH_INFO) if model == MODEL_2D else (16, *SPEC_3D.frame_shape(BENCH_INFO))
    x = np.random.default_rng(0).integers(0, 256, (batch, *shape), dtype=np.uint8)
    return x, gflop_of(model, batch, shape[-3:])


def measure_share(
    run: Callable[[np.ndarray], object], x: np.ndarray, gflop: float, dtype: torch.dtype, rounds: int
) -> tuple[float, float, float]:
    """(GFLOP/s, ceiling, share) of `run(x)`: median over rounds of the rate over the ceiling of `dtype`.

    Each batch is framed by ceiling measurements as long as the batch took, so a shared machine's
    drifting load hits both sides of the ratio alike.
    """
    shares, rates, ceilings, last = [], [], [], 1.0
    for _ in range(rounds):
        before = matmul_ceiling(dtype, seconds=last)
        start = time.perf_counter()
        run(x)
        last = time.perf_counter() - start
        after = matmul_ceiling(dtype, seconds=last)
        rates.append(gflop / last)
        ceilings += [before, after]
        shares.append(rates[-1] / ((before + after) / 2))
    return statistics.median(rates), statistics.median(ceilings), statistics.median(shares)


def compute_share(
    net: torch.nn.Module, model: str, rt: Runtime, batch: int, rounds: int = 3
) -> dict[str, Any]:
    """The model alone through `encode` under `rt`: GFLOP/s and its share of the ceiling of rt's precision."""
    x, gflop = bench_input(model, batch)
    started = time.perf_counter()
    prepared = prepare(net, rt)
    encode(prepared, x[:1], rt)  # weights packed for this frame size here, outside the timing
    prep_s = time.perf_counter() - started
    gflops, ceiling, share = measure_share(lambda b: encode(prepared, b, rt), x, gflop, rt.dtype, rounds)
    return {
        "model": SHORT[model],
        "precision": rt.precision,
        "batch": batch,
        "prep_s": prep_s,
        "gflops": gflops,
        "ceiling": ceiling,
        "share": share,
    }


def profile_lines(net: torch.nn.Module, model: str, rt: Runtime, batch: int, top: int = 6) -> list[str]:
    """One batch of `model` on our path under torch's profiler: its hottest ops, with their shapes."""
    from tasks.bench.hot_ops import hot_ops

    x, _ = bench_input(model, batch)
    prepared = prepare(net, rt)
    encode(prepared, x, rt)  # packed for this size and warm, outside the profile
    total, ops = hot_ops(lambda: encode(prepared, x, rt), top)
    lines = [
        f"-- {SHORT[model]} {rt.precision} batch {batch}, one batch profiled ({total:.2f} s); its top ops by own time:"
    ]
    return lines + ["   " + op.line() for op in ops]


def _run_ours(
    video: Path,
    models: tuple[str, ...],
    nets: dict[str, torch.nn.Module],
    rt: Runtime,
    videos: int,
    decoder: str = "ffmpeg",
) -> BenchRow:
    """Our pipeline over `videos` copies of the video, as a worker runs a shard: one decoder per video in
    flight, each video in its own batches. With a single video the first batch would wait for one
    single-threaded ffmpeg to decode its clips while the other core idles, a start-up cost that a
    shard's stream of videos hides."""
    specs = {MODEL_2D: SPEC_2D, MODEL_3D: SPEC_3D}
    info = probe_with(decoder, str(video))
    encoders = {m: prepare(nets[m], rt) for m in models}
    for m in models:
        # A worker packs its weights once per frame size, then runs for hours: pack outside the timing.
        shape = specs[m].frame_shape(info)
        encode(encoders[m], np.zeros((1, *((16,) if m == MODEL_3D else ()), *shape), np.uint8), rt)
    extractor = Extractor(encoders, {m: specs[m] for m in models}, rt, ExtractorSettings(decoder=decoder))
    before = ceiling_around(rt.dtype)
    start = time.perf_counter()
    results = list(extractor.run(VideoJob(f"bench-{i}", str(video)) for i in range(videos)))
    wall = time.perf_counter() - start
    after = ceiling_around(rt.dtype)
    failed = [r.error for r in results if r.status != "ok"]
    if failed:
        raise RuntimeError(f"bench extraction failed: {failed[0]}")
    gflop = sum(
        gflop_of(m, len(r.rows[m].vectors), specs[m].frame_shape(info)) for r in results for m in models
    )
    name = "both" if len(models) == 2 else SHORT[models[0]]
    return held_to(BenchRow("ours", name, wall, info.duration_s * videos, gflop), before + after)


def median_round(runs: list[BenchRow]) -> BenchRow:
    """The run whose share of its own ceiling is the median of `runs` (the lower middle one of an even
    count), carrying every run's share in `round_shares`. A median, not the best: on a shared machine a
    neighbour's burst during one run moves that run alone, and the rounds say how much."""
    chosen = sorted(runs, key=lambda r: r.share)[(len(runs) - 1) // 2]
    return replace(chosen, round_shares=[r.share for r in runs])


def _pipeline_worker(video: str, videos: int, out: Any, decoder: str = "ffmpeg", rounds: int = 1) -> None:
    """One extraction worker, as the stage runs it: our pipeline for 2d, 3d and both, `rounds` times in
    turn (2d, 3d, both, 2d, ...), each row the median of its rounds; and the worker's peak memory."""
    with PeakMemory() as memory:
        torch.manual_seed(0)
        nets = {MODEL_2D: build_resnet152(None), MODEL_3D: build_resnext101(None)}
        rt = pick_runtime("cpu", "auto")
        warm_decode_checks(decoder)  # once per worker process, not in the first row's time
        combos = ((MODEL_2D,), (MODEL_3D,), (MODEL_2D, MODEL_3D))
        runs: dict[tuple[str, ...], list[BenchRow]] = {models: [] for models in combos}
        for _ in range(max(rounds, 1)):
            for models in combos:
                runs[models].append(_run_ours(Path(video), models, nets, rt, videos, decoder))
        rows = [median_round(runs[models]) for models in combos]
    out.put((rows, memory.peak_mb, memory.children_peak_mb))


@contextlib.contextmanager
def ieee_fp32(device: torch.device) -> Iterator[None]:
    """fp32 convolutions in IEEE fp32 on CUDA: cuDNN runs fp32 convs in TF32 by default, which would hold a
    TF32 reference to an IEEE-fp32 matmul ceiling (and let it pass 100%)."""
    if device.type != "cuda":
        yield
        return
    conv = torch.backends.cudnn.conv
    saved = conv.fp32_precision
    conv.fp32_precision = "ieee"
    try:
        yield
    finally:
        conv.fp32_precision = saved


def run_naive(
    video: Path,
    model: str,
    net: torch.nn.Module,
    device: str = "cpu",
    ceiling_s: float = 1.0,
    decoder: str = "ffmpeg",
) -> BenchRow:
    """The straightforward path (the reference extractor's way): decode the whole video into memory, then
    fp32 NCHW eager batches, one video at a time."""
    rt = pick_runtime(device, "fp32", channels_last=False)
    net = prepare(net, rt)
    info = probe_with(decoder, str(video))
    spec = SPEC_2D if model == MODEL_2D else SPEC_3D
    ceiling_n = 8192 if rt.device.type == "cuda" else 2048
    batch = 16 if model == MODEL_2D else 8
    shape = spec.frame_shape(info)
    with ieee_fp32(rt.device):
        # One untimed batch of the first batch's size: library start-up (cuDNN, lazy kernel loading, oneDNN
        # primitives) is not the path's speed.
        rows = math.ceil(info.duration_s * spec.fps / (16 if model == MODEL_3D else 1))
        warm = (min(batch, max(rows, 1)), *((16,) if model == MODEL_3D else ()), *shape)
        encode(net, np.zeros(warm, np.uint8), rt)
        before = matmul_ceiling(torch.float32, ceiling_n, ceiling_s, rt.device)
        start = time.perf_counter()
        decoded = decode_outputs(str(video), {model: spec}, info, 3600, decoder=decoder)
        frames = np.concatenate([chunk for _, chunk in decoded])
        if model == MODEL_3D:
            pad = -len(frames) % 16
            frames = np.concatenate([frames, np.zeros((pad, *frames.shape[1:]), np.uint8)])
            frames = frames.reshape(-1, 16, *frames.shape[1:])
        for i in range(0, len(frames), batch):
            encode(net, frames[i : i + batch], rt)
        wall = time.perf_counter() - start
        after = matmul_ceiling(torch.float32, ceiling_n, ceiling_s, rt.device)
    gflop = gflop_of(model, len(frames), shape)
    return BenchRow("naive", SHORT[model], wall, info.duration_s, gflop, (before + after) / 2)


def run_bench(
    workdir: Path,
    seconds: int,
    log: Callable[[str], None],
    rounds: int = 3,
    compare_compile: bool = False,
    videos: int = 2,
    decoder: str = "auto",
    profile_ops: bool = False,
) -> dict[str, Any]:
    """Everything in one run; returns the numbers that `howto bench features` prints. `decoder`: the
    stage's features.decoder (auto: the ffmpeg command line where installed, else PyAV). `profile_ops`:
    after the compute-alone rows, each model's hottest ops in one batch of our path (hot_ops.py)."""
    decoder = resolve(decoder, None).decoder
    who = "ffmpeg" if decoder == "ffmpeg" else "PyAV"
    video = workdir / f"bench-{seconds}s-360p.mp4"
    make_video(video, seconds)
    rt = pick_runtime("cpu", "auto")
    heap = keep_freed_memory()  # as the stage's workers do (Extractor), for every row and ceiling alike
    settings = ExtractorSettings(decoder=decoder)
    batches = {MODEL_2D: settings.batch_2d, MODEL_3D: settings.batch_3d}
    log(
        f"CPU features: {' '.join(cpu_features()) or 'unknown'}; native bf16 (oneDNN): "
        f"{'yes' if cpu_bf16_supported() else 'no'}; torch threads: {torch.get_num_threads()}"
    )
    log(isa_line())
    log(f"CPU precision: {cpu_bf16().describe()}")
    allocator = "freed memory kept in the heap" if heap else "allocator as the C library has it"
    log(
        f"path: {rt.describe()}; batches 2d {settings.batch_2d}, 3d {settings.batch_3d}; decoder {decoder}; "
        f"{allocator}"
    )
    # Where bf16 is native both precisions are measured, whichever "auto" took: the other is the comparison.
    other = None
    if cpu_bf16_supported():
        other = pick_runtime("cpu", "fp32" if rt.precision == "bf16" else "bf16")
    for dtype in dict.fromkeys([torch.float32, rt.dtype] + ([other.dtype] if other else [])):
        log(
            f"{_PRECISION[dtype]} GEMM ceiling (2048^3), GFLOP/s: {gemm_ceiling(2048, 2048, 2048, dtype).describe()}"
        )
    log(f"video: {video.name} ({seconds} s, 640x360, 30 fps); 2d frames 224x398, 3d clips 16x112x112")
    info = probe_with(decoder, str(video))
    line, both_per_cpu_s = decode_line(video, {MODEL_2D: SPEC_2D, MODEL_3D: SPEC_3D}, info, None, decoder)
    log(line)
    # Each model alone decodes less (2D skips the 24 fps branch): the rate per row, for the decoder's share.
    decoded_per_cpu_s = {
        "2d": decode_rate(video, {MODEL_2D: SPEC_2D}, info, None, decoder=decoder)[0],
        "3d": decode_rate(video, {MODEL_3D: SPEC_3D}, info, None, decoder=decoder)[0],
        "both": both_per_cpu_s,
    }
    torch.manual_seed(0)
    nets = {MODEL_2D: build_resnet152(None), MODEL_3D: build_resnext101(None)}

    log(
        "-- model compute alone, share of the GEMM ceiling (2048^3, best backend) of its precision, median of rounds:"
    )
    runtimes = [rt] if other is None else [rt, other]
    shares = []
    for runtime in runtimes:
        for model in (MODEL_2D, MODEL_3D):
            shares.append(compute_share(nets[model], model, runtime, batches[model], rounds))
            log(_share_line(shares[-1], "ours" if runtime is rt else f"{runtime.precision} path"))
    if profile_ops:
        for model in (MODEL_2D, MODEL_3D):
            for line in profile_lines(nets[model], model, rt, batches[model]):
                log(line)
    if compare_compile:
        from tasks.bench.compile import compare_paths

        for model in (MODEL_2D, MODEL_3D):
            for line in compare_paths(nets[model], model, rt, batches[model], rounds):
                log(line)

    log(
        f"-- end to end in one worker process ({videos} videos, {min(videos, settings.decode_workers)} decoding "
        "at a time, + compute), our path; each run held to the median of six 1-s ceiling samples, 3 before "
        f"and 3 after it; 2d, 3d and both in turn, {rounds} rounds, each row the round with the median share:"
    )
    ctx = multiprocessing.get_context("spawn")
    box = ctx.Queue()
    worker = ctx.Process(target=_pipeline_worker, args=(str(video), videos, box, decoder, rounds))
    worker.start()
    while True:
        try:
            ours, worker_mb, ffmpeg_mb = box.get(timeout=1.0)
            break
        except queue.Empty:
            if not worker.is_alive():  # killed (OOM) or crashed: say so rather than wait forever
                raise RuntimeError(f"bench worker exited with {worker.exitcode} before reporting") from None
    worker.join()
    rows: list[BenchRow] = list(ours)
    for row in ours:
        log(_line(row))
    cores = usable_cores()
    log(
        f"{who}'s share of the CPU at these speeds (each row's outputs decoded alone: "
        + ", ".join(f"{m} {rate:.0f}x" for m, rate in decoded_per_cpu_s.items())
        + " real time per CPU-second): "
        + ", ".join(
            f"{r.models} {decode_cpu_share(r.realtime, decoded_per_cpu_s[r.models], cores):.0%}" for r in ours
        )
    )
    # What the rows could reach, and how much of it they got: the pipeline's own losses (waits, start-up).
    alone = {s["model"]: s["share"] for s in shares if s["precision"] == rt.precision}
    single = {r.models: r.gflop for r in ours if r.models != "both"}  # the both row does the two's work
    bounds = {
        r.models: decode_bound_share(
            r,
            single if r.models == "both" else {r.models: r.gflop},
            alone,
            decoded_per_cpu_s[r.models],
            cores,
        )
        for r in ours
    }
    log(
        f"end to end at best on {cores} cores (each model at its share alone, {who}'s CPU time taken from "
        "the same cores): "
        + ", ".join(
            f"{r.models} {bounds[r.models]:.0%} (measured: {r.share / bounds[r.models]:.0%} of it)"
            for r in ours
        )
    )
    children = {"ffmpeg": "ffmpeg", "pyav-child": "PyAV's decoding children"}.get(decoder)
    log(
        f"peak memory of the worker (process + its decoder processes, sampled): {worker_mb:.0f} MB "
        f"(goal < 4096 MB), of which "
        + (f"{children} at most {ffmpeg_mb:.0f} MB" if children else "none: PyAV decodes inside the process")
    )
    log("-- naive path (decode everything first, fp32 NCHW eager), for comparison:")
    for model in (MODEL_2D, MODEL_3D):
        rows.append(run_naive(video, model, nets[model], decoder=decoder))
        log(_line(rows[-1]))
    n2d, n3d = rows[-2], rows[-1]
    # The naive path is sequential by construction, so both models cost the sum of the two runs.
    rows.append(
        BenchRow("naive", "both", n2d.wall_s + n3d.wall_s, n2d.video_s, n2d.gflop + n3d.gflop, n2d.ceiling)
    )
    log(_line(rows[-1]) + "  (sum of the two naive runs)")
    ratios = {
        m: _find(rows, "ours", m).realtime / _find(rows, "naive", m).realtime for m in ("2d", "3d", "both")
    }
    log("speed-up ours/naive: " + ", ".join(f"{m} {r:.2f}x" for m, r in ratios.items()))
    goals = _goals(shares, rows, rt, log)
    return {
        "path": rt.describe(),
        "cpu_features": cpu_features(),
        "shares": shares,
        "rows": rows,
        "ratios": ratios,
        "worker_peak_mb": worker_mb,
        "ffmpeg_peak_mb": ffmpeg_mb,
        "goals": goals,
        "decode_bounds": bounds,
    }


def _goals(
    shares: list[dict[str, Any]], rows: list[BenchRow], rt: Runtime, log: Callable[[str], None]
) -> list[str]:
    """Issue 20's goals, judged on the model alone and end to end (decode included): native bf16 >= 50% of
    the bf16 ceiling, the fp32 path >= 70% of the fp32 one. Returns the lines, also logged."""
    goal = {"bf16": 0.5, "fp32": 0.7}
    lines = []
    for s in shares:
        lines.append(_goal_line(f"alone {s['model']} {s['precision']}", s["share"], goal[s["precision"]]))
    for r in rows:
        if r.path == "ours":
            lines.append(_goal_line(f"end to end {r.models} {rt.precision}", r.share, goal[rt.precision]))
    for line in lines:
        log(line)
    return lines


def _goal_line(what: str, share: float, goal: float) -> str:
    return f"goal {what} >= {goal:.0%} of its ceiling: {'met' if share >= goal else 'NOT met'} ({share:.0%})"


def _find(rows: list[BenchRow], path: str, models: str) -> BenchRow:
    return next(r for r in rows if r.path == path and r.models == models)


def _share_line(s: dict[str, Any], label: str) -> str:
    return (
        f"{label:<9} {s['model']} {s['precision']} batch {s['batch']:>2}: {s['gflops']:6.1f} GFLOP/s, "
        f"ceiling {s['ceiling']:6.1f} -> {100 * s['share']:3.0f}%  (prepare + pack {s['prep_s']:.1f} s)"
    )


def _line(r: BenchRow) -> str:
    spread = (
        f"; {r.gflops / r.ceiling_high:.0%}-{r.gflops / r.ceiling_low:.0%} against its fastest and slowest sample"
        if r.ceiling_low
        else ""
    )
    rounds = (
        f"; the rounds: {', '.join(f'{share:.0%}' for share in r.round_shares)}"
        if len(r.round_shares) > 1
        else ""
    )
    return (
        f"{r.path:<5} {r.models:<4} {r.wall_s:7.1f} s wall  {r.realtime:6.2f}x real time  "
        f"{r.gflops:6.1f} GFLOP/s ({100 * r.share:3.0f}% of the ceiling measured around it{spread}{rounds})"
    )
