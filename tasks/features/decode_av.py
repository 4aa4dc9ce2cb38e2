"""Decode through PyAV (FFmpeg's own libraries, in process, from the `av` wheel): the same frames as the
ffmpeg command-line path in tasks/features/decode.py, for hosts that have no ffmpeg executable (GPU images
often ship none) and for NVDEC where the host's ffmpeg was built without it (the wheel's libavcodec has the
cuda hwaccel and loads the driver's libcuda/libnvcuvid at run time).

The filters are the command line's, built with libavfilter's API: the picture is turned upright as ffmpeg
auto-rotates, split once per output, and each branch picks frames (fps, same rounding), scales, crops and
converts to rgb24. Timestamps are shifted by the container's start time as ffmpeg does before filtering, so
the fps filter picks the same frames. Checked by tests: the frames equal the command line's.
"""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from fractions import Fraction
from typing import Any

import numpy as np

from tasks.features.decode import (
    FPS_START_TIME,
    PLANAR_CHECK_SOURCE,
    PLANAR_CHECKS,
    DecodeError,
    DecodeReport,
    DecodeTimeout,
    HardwareDecodeFailed,
    StreamSpec,
    VideoInfo,
    check_frame_counts,
    display_size,
    output_pix_fmt,
    picture_end_s,
    row_clock_origin_s,
)
from tasks.queues import put_unless_stopped

# The filters ffmpeg inserts for a display matrix of a quarter or half turn (fftools, autorotate): keyed by
# the matrix's rotation in ffprobe's sign, counter-clockwise degrees (-90: shown turned a quarter clockwise).
_UPRIGHT = {-90: ("transpose=clock",), 90: ("transpose=cclock",), 180: ("hflip", "vflip")}


def _av() -> Any:
    """The `av` module, imported on first use: the command-line path never needs it."""
    try:
        import av
    except ImportError as exc:  # pragma: no cover - av is a pinned dependency
        raise DecodeError("PyAV is not installed (pip install av): it is the in-process decoder") from exc
    return av


def _quarter_turn(degrees: float) -> int:
    """A display matrix's rotation as -90, 0, 90 or 180 (ffmpeg turns only these without a rotate filter)."""
    turns = round(degrees / 90) % 4
    return {0: 0, 1: 90, 2: 180, 3: -90}[turns]


def _message(exc: BaseException) -> str:
    """An FFmpeg error's own words (PyAV puts the file name after them)."""
    return str(getattr(exc, "strerror", None) or exc).strip() or type(exc).__name__


def _open(
    path: str, hwaccel: str | None = None, threads: int = 1, keep_on_device: bool = False
) -> tuple[Any, Any]:
    """The container and its first video stream, or DecodeError in FFmpeg's words. `keep_on_device`: NVDEC's
    frames stay in GPU memory (decode_device.py) instead of being copied back to the host."""
    av = _av()
    options: dict[str, Any] = {}
    if hwaccel:
        # Software fallback on: a stream NVDEC refuses (codec, profile, size) is decoded on the CPU, as
        # ffmpeg does; the report then says so (see stream_outputs).
        # In torch's CUDA context where FFmpeg accepts it: by default FFmpeg creates a CUDA context per
        # decoder, that is per video opened, a fixed cost (the context's creation, its own device memory,
        # times the 16 or 32 decoders in flight) that a short video pays in full. Not FFmpeg's
        # `primary_ctx`: it retains the primary context only if that was made with blocking-sync
        # scheduling, and torch has made it already with its own. Elsewhere each decoder has its own.
        shared = decoders_share_torch_context(hwaccel) and _bind_torch_context(hwaccel)
        options["hwaccel"] = hwaccel_settings(
            hwaccel, software_fallback=True, in_current_context=shared, keep_on_device=keep_on_device
        )
    try:
        container = av.open(path, **options)
    except (av.error.FFmpegError, OSError) as exc:
        raise DecodeError(_message(exc)) from exc
    if not container.streams.video:
        container.close()
        raise DecodeError("no video stream")
    stream = container.streams.video[0]
    stream.thread_count = threads
    return container, stream


def hwaccel_settings(
    device: str, software_fallback: bool, in_current_context: bool = False, keep_on_device: bool = False
) -> Any:
    """PyAV's HWAccel for `device` ("cuda", "cuda:N"); with `in_current_context`, FFmpeg's CUDA device works
    in the CUDA context current on the calling thread (`current_ctx`) instead of creating one of its own;
    with `keep_on_device`, decoded frames stay in device memory (PyAV's is_hw_owned)."""
    from av.codec.hwaccel import HWAccel

    kind, _, index = device.partition(":")
    options: dict[str, object] | None = None
    if kind == "cuda" and in_current_context:
        # With is_hw_owned PyAV adds primary_ctx unless told otherwise; that asks FFmpeg for the primary
        # context with blocking-sync scheduling, which it cannot have once torch made it with its own.
        options = {"current_ctx": "1", "primary_ctx": "0"} if keep_on_device else {"current_ctx": "1"}
    return HWAccel(
        kind,
        device=index or None,
        allow_software_fallback=software_fallback,
        options=options,
        is_hw_owned=keep_on_device,
    )


def _bind_torch_context(device: str) -> bool:
    """Make torch's CUDA context on `device` (the device's primary context) current on this thread: False
    where this torch has no CUDA or no such device."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a pinned dependency
        return False
    if not torch.cuda.is_available():
        return False
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        return False
    try:
        torch.cuda.set_device(index)
        torch.cuda.mem_get_info(index)  # a runtime call: the runtime binds its primary context to the thread
    except RuntimeError:
        return False
    return True


@functools.cache
def decoders_share_torch_context(device: str) -> bool:
    """Whether PyAV's decoders on `device` can work in torch's CUDA context, tried once per process on a
    one-second clip (see _open)."""
    if device.partition(":")[0] != "cuda" or not _bind_torch_context(device):
        return False
    return _decodes_probe_on(device, in_current_context=True)


def decodes_on_hardware(context: Any, hwaccel: str | None) -> bool:
    """Whether a decoder opened with `hwaccel` ("cuda", "cuda:N") really decodes on the device.

    Not `context.is_hwaccel` alone: PyAV sets it once the device context exists, before the decoder has
    tried the stream. When NVDEC then refuses the stream (a codec, profile or size it lacks), libavcodec
    falls back to software (allow_software_fallback) and is_hwaccel stays True, so a CPU decode was
    reported as the GPU's. The context's pixel format tells: it is the hardware one ("cuda") while the
    device decodes, the software one (yuv420p, ...) once libavcodec fell back (read after a frame)."""
    if not hwaccel or not context.is_hwaccel:
        return False
    return bool(context.pix_fmt == hwaccel.partition(":")[0])  # AV_PIX_FMT_CUDA is named "cuda"


def probe(path: str, timeout_s: float = 30.0) -> VideoInfo:
    """What decode.probe (ffprobe) says of the first video stream: the displayed size (turned and stretched
    as ffmpeg shows it), duration, decoder pixel format and codec; DecodeError in FFmpeg's words, or
    DecodeTimeout past `timeout_s` (the probe's thread is then abandoned, as a hung ffprobe is killed)."""
    box: queue.Queue[tuple[VideoInfo | None, BaseException | None]] = queue.Queue(maxsize=1)

    def run() -> None:
        try:
            box.put((_probe(path), None))
        except BaseException as exc:  # handed to the caller's thread
            box.put((None, exc))

    threading.Thread(target=run, daemon=True, name=f"pyav-probe {path}").start()
    try:
        info, error = box.get(timeout=timeout_s)
    except queue.Empty:
        raise DecodeTimeout(f"probe abandoned after {timeout_s:.0f} s (timeout)") from None
    if error is not None:
        raise error
    assert info is not None
    return info


def _probe(path: str) -> VideoInfo:
    """probe's work. The rotation is read off the first decoded frame's display matrix, where libavcodec
    puts the stream's."""
    av = _av()
    container, stream = _open(path)
    try:
        rotation = 0
        try:
            for frame in container.decode(stream):
                rotation = frame.rotation
                break
        except av.error.FFmpegError as exc:
            raise DecodeError(_message(exc)) from exc
        start = container.start_time / 1e6 if container.start_time is not None else 0.0
        # As decode.probe: the stream's duration from its own first time stamp where it has them, else the
        # container's from the rows' origin.
        first = row_clock_origin_s(start)
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
            if stream.start_time is not None:
                first = float(stream.start_time * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1e6
        else:
            raise DecodeError("unknown duration")
        sar = stream.sample_aspect_ratio
        width, height = display_size(
            stream.codec_context.width,
            stream.codec_context.height,
            float(rotation),
            f"{sar.numerator}:{sar.denominator}" if sar else None,
        )
        if not width or not height:
            raise DecodeError("no video stream")
        # ffprobe prints seconds to six decimals: the same number either way.
        duration = round(duration, 6)
        end = round(picture_end_s(first, duration, start), 6)
        context = stream.codec_context
        return VideoInfo(width, height, duration, context.pix_fmt, context.name, round(start, 6), end)
    finally:
        container.close()


def branch_filters(spec: StreamSpec, info: VideoInfo, out_fmt: str = "rgb24") -> list[str]:
    """One output's filters, as decode._branch gives the command line: pick frames, (RGB first for 2D),
    scale, centre-crop, then the output format (rgb24, or planar gbrp where it carries the same pixels:
    see planar_rgb_exact)."""
    width, height = spec.out_size(info)
    filters = [f"fps=fps={spec.fps}:round={spec.round}:start_time={FPS_START_TIME}"]
    if spec.rgb_first:
        filters.append("format=rgb24")
    filters.append(f"scale={width}:{height}")
    if spec.crop:
        x, y = int((width - spec.crop) / 2), int((height - spec.crop) / 2)
        filters.append(f"crop={spec.crop}:{spec.crop}:{x}:{y}")
    filters.append(f"format={out_fmt}")
    return filters


_planar_verdicts: dict[str, bool] = {}


def planar_rgb_exact(kind: str) -> bool:
    """decode.planar_rgb_exact for PyAV's libraries: whether their planar RGB (gbrp) output carries the same
    pixels as packed rgb24 for every filter chain of `kind`. PyAV hands gbrp frames over as (H, W, 3) RGB,
    and swscale's planar writer is vectorised where its packed one is plain C (about a third of PyAV's CPU
    time for a 360p video into both outputs). Checked once per process on the wheel's own swscale, unless
    the process was handed the verdicts (adopt_planar_verdicts)."""
    if kind not in _planar_verdicts:
        _planar_verdicts[kind] = _check_planar(kind)
    return _planar_verdicts[kind]


def planar_verdicts() -> dict[str, bool]:
    """Every kind's verdict, checked here where not known yet: what a decoding child is handed."""
    return {kind: planar_rgb_exact(kind) for kind in PLANAR_CHECKS}


def adopt_planar_verdicts(verdicts: Mapping[str, bool]) -> None:
    """Take the verdicts of a process with the same libraries (the parent of a decoding child), which
    saves the child the checks' own decodes (about 0.2 s per process)."""
    _planar_verdicts.update(verdicts)


def _check_planar(kind: str) -> bool:
    av = _av()
    for chain, _, _ in PLANAR_CHECKS[kind]:
        outputs = []
        for out_fmt in ("rgb24", "gbrp"):
            graph = av.filter.Graph()
            source, *filters = PLANAR_CHECK_SOURCE.split(",") + chain.split(",") + [f"format={out_fmt}"]
            try:
                sink = _chain(graph, graph.add(*_split(source)), [*filters, "buffersink"])
                graph.configure()
                outputs.append(np.stack(list(_drain(sink))))
            except (av.error.FFmpegError, ValueError):
                return False
        packed, planar = outputs
        if packed.shape != planar.shape or not np.array_equal(packed, planar):
            return False
    return True


def _split(text: str) -> tuple[str, str | None]:
    name, _, args = text.partition("=")
    return name, args or None


def _chain(graph: Any, start: Any, filters: list[str], output: int = 0) -> Any:
    """Add `filters` ("name=args") to `graph` one after the other from `start`'s pad `output`; the last."""
    node = start
    for text in filters:
        nxt = graph.add(*_split(text))
        node.link_to(nxt, output, 0)
        node, output = nxt, 0
    return node


def _drain(sink: Any) -> Iterator[np.ndarray]:
    av = _av()
    while True:
        try:
            yield sink.pull().to_ndarray()
        except (av.error.BlockingIOError, av.error.EOFError):
            return


class _Graph:
    """The filter graph for one file: source -> [source format] -> [upright] -> split -> one chain per spec."""

    def __init__(
        self, first: Any, specs: Mapping[str, StreamSpec], info: VideoInfo, threads: int, hardware: bool
    ) -> None:
        av = _av()
        self.graph = av.filter.Graph()
        self.graph.threads = threads
        self.source = self.graph.add_buffer(
            width=first.width, height=first.height, format=first.format, time_base=first.time_base
        )
        front: list[str] = []
        if hardware and info.pix_fmt and first.format.name != info.pix_fmt:
            # NVDEC hands NV12 over; the CPU's pixels come from the source's own format (see decode._command).
            front.append(f"format={info.pix_fmt}")
        front += _UPRIGHT.get(_quarter_turn(first.rotation), ())
        tail = _chain(self.graph, self.source, front)
        split = self.graph.add("split", str(len(specs))) if len(specs) > 1 else None
        if split is not None:
            tail.link_to(split)
        self.sinks: dict[str, Any] = {}
        for n, (key, spec) in enumerate(specs.items()):
            out_fmt = output_pix_fmt(spec, info, planar_rgb_exact)
            filters = [*branch_filters(spec, info, out_fmt), "buffersink"]
            self.sinks[key] = _chain(self.graph, split if split is not None else tail, filters, n)
        self.graph.configure()

    def push(self, frame: Any | None) -> None:
        self.source.push(frame)

    def pull(self) -> Iterator[tuple[str, np.ndarray]]:
        """Every frame the sinks have ready, as (key, (H, W, 3) uint8)."""
        for key, sink in self.sinks.items():
            for picture in _drain(sink):  # gbrp too comes out as (H, W, 3) RGB
                yield key, picture


class _Producer:
    """Decodes the file on its own thread and puts (key, chunk) into a bounded box; ("end", error) last."""

    def __init__(
        self,
        path: str,
        specs: Mapping[str, StreamSpec],
        info: VideoInfo,
        threads: int,
        hwaccel: str | None,
    ) -> None:
        self.path, self.specs, self.info, self.threads, self.hwaccel = path, specs, info, threads, hwaccel
        self.box: queue.Queue[Any] = queue.Queue(maxsize=len(specs))
        self.stop = threading.Event()
        self.errors: list[str] = []  # FFmpeg's words for packets it could not decode (the file's damage)
        self.on_hardware = False
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"pyav-decode {path}")

    def _put(self, item: Any) -> None:
        put_unless_stopped(self.box, item, self.stop)

    def _run(self) -> None:
        error: BaseException | None = None
        try:
            self._decode()
        except BaseException as exc:  # handed to the consumer, which raises it in its own thread
            error = exc
        self._put(("end", error))

    def _decode(self) -> None:
        container, stream = _open(self.path, self.hwaccel, self.threads)
        try:
            graph: _Graph | None = None
            held: dict[str, list[np.ndarray]] = {key: [] for key in self.specs}
            for frame in self._frames(container, stream):
                if graph is None:
                    # The source-format step whenever a device context exists: it only acts on frames
                    # not already in the source's format (NVDEC's NV12), a no-op after a fallback.
                    device = bool(self.hwaccel and stream.codec_context.is_hwaccel)
                    graph = _Graph(frame, self.specs, self.info, self.threads, device)
                graph.push(frame)
                self._collect(graph, held, final=False)
            if graph is not None and not self.stop.is_set():
                graph.push(None)
                self._collect(graph, held, final=True)
        finally:
            container.close()

    def _frames(self, container: Any, stream: Any) -> Iterator[Any]:
        """The file's decoded frames in order, until the end or `stop`. Their time stamps are shifted by
        the file's start time, as ffmpeg shifts them before filtering: fps then counts from the file's start,
        not from the container's clock (an MPEG-TS starts at 1.4 s); a negative start (an audio codec's
        pre-roll) counts as 0, see decode.row_clock_origin_s. A packet the decoder
        cannot read is logged and skipped, as ffmpeg does, except on the hardware decoder once it has
        started (HardwareDecodeFailed). `on_hardware` is known from the first frame on."""
        av = _av()
        start = row_clock_origin_s(container.start_time or 0)  # microseconds: 0 or more either way
        shift = int(round(Fraction(int(start), 1_000_000) / stream.time_base)) if stream.time_base else 0
        first = True
        for packet in container.demux(stream):
            if self.stop.is_set():
                return
            try:
                frames = packet.decode()
            except av.error.FFmpegError as exc:
                if decodes_on_hardware(stream.codec_context, self.hwaccel):
                    raise HardwareDecodeFailed(_message(exc)) from exc
                self.errors.append(_message(exc))
                continue  # as ffmpeg does: log, go on with the next packet
            for frame in frames:
                if first:
                    first = False
                    self.on_hardware = decodes_on_hardware(stream.codec_context, self.hwaccel)
                if frame.pts is not None:
                    frame.pts -= shift
                yield frame

    def _collect(self, graph: _Graph, held: dict[str, list[np.ndarray]], final: bool) -> None:
        for key, picture in graph.pull():
            held[key].append(picture)
            if len(held[key]) == self.specs[key].chunk:
                self._put((key, np.stack(held[key])))
                held[key] = []
        if final:
            for key, pictures in held.items():
                if pictures:
                    self._put((key, np.stack(pictures)))


def stream_outputs(
    path: str,
    specs: Mapping[str, StreamSpec],
    info: VideoInfo,
    timeout_s: float,
    threads: int = 1,
    hwaccel: str | None = None,
    report: DecodeReport | None = None,
) -> Iterator[tuple[str, np.ndarray]]:
    """decode.stream_outputs through PyAV: (key, uint8 (n, H, W, 3) chunk) for every spec, the file decoded
    once; DecodeError for a file FFmpeg cannot read (or one that gave under 90% of its frames with errors),
    DecodeTimeout once we have waited `timeout_s` in total for frames, HardwareDecodeFailed when the hardware
    decoder failed on a picture after it started. Memory: about two chunks per output.

    A decode that overruns its budget is abandoned, not killed: its thread stops at the next packet. A
    thread stuck inside one library call (a stalled network mount) stays until that call returns.
    """
    yield from consume(
        _Producer(path, specs, info, threads, hwaccel), specs, info, timeout_s, hwaccel, report
    )


def consume(
    producer: _Producer,
    specs: Mapping[str, StreamSpec],
    info: VideoInfo,
    timeout_s: float,
    hwaccel: str | None,
    report: DecodeReport | None,
) -> Iterator[tuple[str, Any]]:
    """Start `producer` and yield its chunks under the time budget (stream_outputs' contract); the decoder
    that keeps frames on the GPU (decode_device.py) runs its own producer through it."""
    producer.thread.start()
    frames = dict.fromkeys(specs, 0)
    waited = 0.0
    error: BaseException | None = None
    try:
        while True:
            since = time.monotonic()
            try:
                key, item = producer.box.get(timeout=max(min(timeout_s - waited, 0.1), 0.001))
            except queue.Empty:
                waited += time.monotonic() - since
                if waited > timeout_s:
                    raise DecodeTimeout(f"decode abandoned after {timeout_s:.0f} s (timeout)") from None
                continue
            waited += time.monotonic() - since
            if key == "end":
                error = item
                break
            frames[key] += len(item)
            yield key, item
    finally:
        producer.stop.set()  # a consumer that stops early frees the producer
    if isinstance(error, DecodeError | HardwareDecodeFailed | DecodeTimeout):
        raise error
    if error is not None:
        raise DecodeError(_message(error)) from error
    if report is not None:
        report.decoder = hwaccel if hwaccel and producer.on_hardware else "cpu"
        if hwaccel:
            report.fallback = None if producer.on_hardware else "PyAV's hardware decoder refused the stream"
    check_frame_counts(frames, specs, info, " | ".join(producer.errors[-3:]))


def _probe_clip() -> Any:
    """A one-second 256x144 H.264 clip in memory (10 frames), for the hardware probes."""
    av = _av()
    import io

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 256, 144, "yuv420p"
        picture = np.zeros((144, 256, 3), np.uint8)
        for k in range(10):
            picture[:, :, 0] = 25 * k
            out.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        out.mux(stream.encode(None))
    buffer.seek(0)
    return buffer


def _decodes_probe_on(device: str, in_current_context: bool) -> bool:
    """The probe clip decodes on `device` with no software fallback."""
    av = _av()
    try:
        accel = hwaccel_settings(device, software_fallback=False, in_current_context=in_current_context)
        with av.open(_probe_clip(), hwaccel=accel) as container:
            video = container.streams.video[0]
            decoded = sum(1 for _ in container.decode(video))
            return decoded > 0 and bool(video.codec_context.is_hwaccel)
    except (av.error.FFmpegError, OSError, ValueError, NotImplementedError, RuntimeError):
        return False


@functools.cache
def hwaccel_available(device: str) -> bool:
    """True when PyAV's libraries decode H.264 on the `device` GPU ("cuda" or "cuda:N"): a one-second clip
    is encoded and decoded with no software fallback, so a missing driver or libnvcuvid says no."""
    return _decodes_probe_on(device, in_current_context=False)
