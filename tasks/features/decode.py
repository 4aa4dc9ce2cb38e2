"""Stream frames out of a video with ffmpeg-python: 2D at 1 fps, 3D at 24 fps as 16-frame clips, no disk."""

from __future__ import annotations

import functools
import json
import logging
import os
import queue
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from models.frame_rows import Rows, pad_with_zeros
from tasks.interrupts import check_child
from tasks.queues import put_unless_stopped

log = logging.getLogger(__name__)

CLIP_FRAMES = 16


class DecodeError(RuntimeError):
    """ffmpeg could not read the file (corrupt, truncated, not a video): a permanent per-video failure."""


class DecodeTimeout(RuntimeError):
    """ffmpeg ran past its time budget and was killed: recorded as a retryable row error."""


class HardwareDecodeFailed(RuntimeError):
    """The hardware decoder failed on pictures after it had started: the frames it gave are not to be
    trusted, and the file is decoded again on the CPU (see decode_outputs)."""


@dataclass(frozen=True)
class VideoInfo:
    """What ffprobe says about the first video stream."""

    width: int
    height: int
    duration_s: float
    pix_fmt: str | None = None  # the decoder's software pixel format (yuv420p for most H.264)
    codec: str | None = None  # ffprobe's codec_name: h264, vp9, av1, ...
    start_s: float = 0.0  # the container's start time (its earliest stream's): see row_clock_origin_s
    # Where the picture ends on the rows' clock (picture_end_s); None (an info made by hand): at duration_s.
    end_s: float | None = None

    def rows_end_s(self) -> float:
        """Where the last frame row ends: the picture's end on the rows' clock."""
        return self.duration_s if self.end_s is None else self.end_s


@dataclass
class DecodeReport:
    """Which decoder really decoded a file: the hardware one asked for ("cuda", "cuda:1") or "cpu", and
    when it was not the one asked for, ffmpeg's reason."""

    decoder: str = "cpu"
    fallback: str | None = None


# libavcodec's lines when a hardware decoder refuses a stream (a codec, profile or frame size NVDEC lacks):
# ffmpeg then decodes it in software and exits 0 (libavcodec/decode.c and nvdec.c, error level), so the
# exit code does not tell which decoder ran. These lines are about the decoder, not the file.
HWACCEL_REFUSALS = (
    "Failed setup for format",
    "hwaccel initialisation returned error",
    "Hardware is lacking required capabilities",
    "not within range from",
    "macroblock count",
)


# On a hardware run that was not refused, ffmpeg's error lines may be the decoder's failures on pictures
# after it started (a driver fault, a stream it mis-decodes, a lost device), and its pictures are then
# wrong or missing: ffmpeg goes on and usually exits 0, and the fps filter repeats frames over the gaps, so
# the frame count looks right. The known lines name it (libavcodec's "hardware accelerator failed to decode
# picture" for H.264, HEVC and MPEG-1/2, AV1's "HW accel end frame fail", NVDEC's "No decoder surfaces
# left" and its failed cuvid/cuCtx calls, fftools' "Failed to transfer data to output frame"), but other
# codecs and faults just log an error. ffmpeg runs at -loglevel error, so a healthy decode prints nothing:
# every error line counts, and the CPU's decode of the file decides whether the file itself is damaged.
def hwaccel_failures(stderr: str) -> list[str]:
    """The error lines of a hardware run's stderr, its refusal lines left out (see split_hwaccel_refusals):
    any of them means the hardware decoder's pictures are not to be trusted."""
    _, rest = split_hwaccel_refusals(stderr)
    return [line.strip() for line in rest.splitlines() if line.strip()]


def is_hwaccel_refusal(line: str) -> bool:
    """True for a line of ffmpeg's stderr that says the hardware decoder refused the stream."""
    return any(marker in line for marker in HWACCEL_REFUSALS)


def split_hwaccel_refusals(stderr: str) -> tuple[list[str], str]:
    """ffmpeg's stderr as (the hardware decoder's refusal lines, the rest of the text)."""
    refusals: list[str] = []
    rest: list[str] = []
    for line in stderr.splitlines():
        (refusals if is_hwaccel_refusal(line) else rest).append(line)
    return [line.strip() for line in refusals if line.strip()], "\n".join(rest)


@dataclass(frozen=True)
class StreamSpec:
    """One decode recipe: frame rate, short side, optional centre crop, fps rounding, frames per chunk."""

    fps: float
    short_side: int
    crop: int | None = None
    round: str = "near"
    chunk: int = 8
    rgb_first: bool = False

    def out_size(self, info: VideoInfo) -> tuple[int, int]:
        """(width, height) after scaling; the long side is truncated as the reference extractor does."""
        w, h = info.width, info.height
        if h >= w:
            return self.short_side, int(h * self.short_side / w)
        return int(w * self.short_side / h), self.short_side

    def frame_shape(self, info: VideoInfo) -> tuple[int, int, int]:
        if self.crop:
            return self.crop, self.crop, 3
        w, h = self.out_size(info)
        return h, w, 3


# The widest picture decoded: 2D frames keep their whole scaled size (no crop), so a 2000x2 file (crafted, or
# a broken encode) scaled to a 224 px short side made 224x224000 frames, 150 MB each, batches of them GBs.
# YouTube's widest (32:9) is 3.6:1.
MAX_ASPECT = 16


def check_frame_size(info: VideoInfo) -> None:
    """DecodeError for a picture too thin to scale (longer side over MAX_ASPECT times the shorter)."""
    long, short = max(info.width, info.height), min(info.width, info.height)
    if short <= 0 or long > MAX_ASPECT * short:
        raise DecodeError(
            f"picture {info.width}x{info.height} is over {MAX_ASPECT}:1: its short side scaled to the models' "
            "input would make frames of hundreds of MB; not decoded"
        )


# The reference preprocessing (DESIGN.md): round=up puts frame k at t=k s instead of k+0.47 s.
SPEC_2D = StreamSpec(fps=1.0, short_side=224, round="up", chunk=8, rgb_first=True)
SPEC_3D = StreamSpec(fps=24.0, short_side=112, crop=112, chunk=CLIP_FRAMES * 4)


def probe(path: str, timeout_s: float = 30.0) -> VideoInfo:
    """Width, height and duration of the first video stream, or DecodeError with ffprobe's message."""
    cmd = [
        "ffprobe",
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=width,height,start_time,duration,pix_fmt,codec_name,sample_aspect_ratio"
        ":stream_side_data=rotation:stream_tags=rotate:format=duration,start_time",
        "-of",
        "json",
        # After -i, as ffmpeg takes its input: a bare file named "-clip.mp4" was read as an option.
        "-i",
        path,
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise DecodeTimeout(f"ffprobe timed out after {timeout_s:.0f} s") from exc
    message = _last_lines(done.stderr.decode(errors="replace"))
    if done.returncode != 0:
        check_child(done.returncode, "ffprobe")  # a stop signal, not the file
        raise DecodeError(message or f"ffprobe exited with {done.returncode}")
    data: dict[str, Any] = json.loads(done.stdout or b"{}")
    streams = data.get("streams") or []
    if not streams or not streams[0].get("width"):
        raise DecodeError(message or "no video stream")
    stream = streams[0]
    container = data.get("format", {})
    duration = stream.get("duration") or container.get("duration")
    if duration is None:
        raise DecodeError(message or "unknown duration")
    width, height = display_size(
        int(stream["width"]), int(stream["height"]), _rotation(stream), stream.get("sample_aspect_ratio")
    )
    start = _number(container.get("start_time"))
    # The duration is the stream's where it has one (mp4, MPEG-TS), counted from its own first time stamp;
    # else the container's (webm, mkv: their header's duration counts from 0 however early their Opus
    # pre-roll starts, and PyAV reads no such negative start), counted from the rows' origin.
    has_own = stream.get("duration") and stream.get("start_time") not in (None, "N/A")
    first = _number(stream["start_time"]) if has_own else row_clock_origin_s(start)
    end = picture_end_s(first, float(duration), start)
    return VideoInfo(
        width, height, float(duration), stream.get("pix_fmt"), stream.get("codec_name"), start, round(end, 6)
    )


def _number(value: Any) -> float:
    """ffprobe's number (a string, "N/A" where unknown) as a float, 0.0 where it has none."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


# Row k of a branch is the picture on screen at k / fps seconds of the file's clock, the clock captions and
# the audio rows are on. ffmpeg counts it from the container's start (the earliest stream's first time stamp:
# an MPEG-TS starts at 1.4 s), so the fps filter is told that its first slot is that 0 (start_time=0): a video
# stream that starts later than the file (its audio) repeats its first picture back to 0 instead of moving
# every row earlier, by up to a second, as counting from its first frame did (and the command line's output,
# which pads to 0 by itself, disagreed with PyAV's). A negative start is no picture time but an audio codec's
# pre-roll (Opus in a webm or mkv, as yt-dlp merges YouTube's streams: -7 ms): counted from it, the video's
# first frame sat at +7 ms, round=up put it in the slot of 1 s, and row 0 showed the picture at 1 s, the rest
# one frame early, with a row too many.
FPS_START_TIME = 0


def row_clock_origin_s(start_s: float) -> float:
    """Where the rows' clock starts on the file's own time stamps: the container's start, 0 if negative."""
    return max(start_s, 0.0)


def picture_end_s(first_s: float, duration_s: float, start_s: float) -> float:
    """Where a picture that starts at `first_s` of the file's time stamps and lasts `duration_s` ends on the
    rows' clock (counted from row_clock_origin_s(start_s)). Not its duration: a video stream that starts
    0.5 s into the file (an edit list, audio first) has its last row at 4 s and its end at 4.5 s; ending the
    rows at the duration (4 s) left that row 1 ms long, and the video 0.5 s short in the hours of features."""
    return max(first_s + duration_s - row_clock_origin_s(start_s), 0.0)


def _rotation(stream: Mapping[str, Any]) -> float:
    """Degrees from the display matrix (ffmpeg >= 5: side data), or the legacy `rotate` tag (older ffprobe)."""
    for side in stream.get("side_data_list") or []:
        if isinstance(side, dict) and isinstance(side.get("rotation"), int | float):
            return float(side["rotation"])
    try:
        return float((stream.get("tags") or {}).get("rotate", 0))
    except (TypeError, ValueError):
        return 0.0


def display_size(width: int, height: int, rotation: float = 0.0, sar: str | None = None) -> tuple[int, int]:
    """The picture as players show it, which is what ffmpeg's filters receive: stored pixels stretched by
    the sample aspect ratio, then turned by a quarter-turn display matrix (a phone video stored 1920x1080
    with rotation -90 reaches the filters as 1080x1920, because ffmpeg auto-rotates). Scaling to the stored
    size instead squeezed such a video into the wrong shape: every feature of it was computed on a
    distorted picture.
    """
    num, _, den = (sar or "").partition(":")
    if num.isdigit() and den.isdigit() and int(num) > 0 and int(den) > 0 and num != den:
        width = max(1, round(width * int(num) / int(den)))
    if round(rotation / 90) % 2:
        return height, width
    return width, height


def _last_lines(text: str, n: int = 3) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-n:])


# Codecs whose default ffmpeg decoder has no hwaccel: ffmpeg prefers libdav1d for AV1 when it is built in,
# and libdav1d ignores -hwaccel without a word, so an "NVDEC" run decoded on the CPU and was reported as
# the GPU's. The native decoder named here is the one that hands AV1 to NVDEC.
_HWACCEL_DECODERS = {"av1": "av1"}


def hwaccel_options(device: str, codec: str | None = None) -> dict[str, str]:
    """ffmpeg's input options for decoding on `device`: "cuda" (GPU 0) or "cuda:N" (GPU N), with the
    decoder for `codec` forced where ffmpeg's default one cannot use the GPU."""
    kind, _, index = device.partition(":")
    options = {"hwaccel": kind, **({"hwaccel_device": index} if index else {})}
    if codec in _HWACCEL_DECODERS:
        options["c:v"] = _HWACCEL_DECODERS[codec]
    return options


@functools.cache
def hwaccel_available(device: str) -> bool:
    """True when ffmpeg really decodes H.264 on the `device` hardware decoder here ("cuda" or "cuda:N":
    NVDEC of that GPU; each GPU is probed on its own).

    Opening a CUDA device is not enough: a container without the driver's video capability (no
    libnvcuvid) opens one and then cannot decode. So a one-second clip is encoded and decoded on it, and
    the decode must exit 0 without an error line (libavcodec's fallback to software exits 0 too).
    """
    with tempfile.TemporaryDirectory(prefix="howto-hwaccel-") as tmp:
        clip = os.path.join(tmp, "probe.mp4")
        make = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=256x144:rate=10:duration=1"]
        options = {**hwaccel_options(device), "hwaccel_output_format": device.partition(":")[0]}
        hw = [arg for name, value in options.items() for arg in (f"-{name}", value)]
        decode = ["ffmpeg", "-v", "error", *hw, "-i", clip]
        try:
            # H.264 is what the stage decodes; builds made for NVIDIA hardware often leave out GPL's
            # libx264, so MPEG-4 part 2 (built into every ffmpeg, and NVDEC decodes it) is the fallback.
            for codec in ("libx264", "mpeg4"):
                encode = [*make, "-c:v", codec, "-pix_fmt", "yuv420p", "-y", clip]
                if subprocess.run(encode, capture_output=True, timeout=60).returncode == 0:
                    break
            else:
                return False
            done = subprocess.run([*decode, "-f", "null", "-"], capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return False
    # The exit code alone does not tell: where NVDEC cannot start (no libnvcuvid, an old driver) libavcodec
    # logs "Failed setup for format cuda" and decodes in software, and ffmpeg passes software frames on
    # untouched despite -hwaccel_output_format, so `-f null` exits 0. At -v error a clean hardware decode
    # of this clip prints nothing: any error line (a refusal or a failure) means no.
    return done.returncode == 0 and not done.stderr.decode(errors="replace").strip()


# A chroma-rich yuv420p pattern, and per kind of branch the filters whose packed (rgb24) and planar (gbrp)
# outputs must agree: the 3D branch of a 16:9 video (scaled in YUV to an odd width, 640x360 -> 199x112), and
# the 2D branch (converted to RGB, then scaled in RGB, down from 360p and up from 144p).
PLANAR_CHECK_SOURCE = (
    "testsrc2=size=640x360:rate=24:duration=0.5,format=yuv420p,noise=c0s=30:c1s=60:c2s=60:all_seed=7:allf=t"
)
PLANAR_CHECKS: dict[str, tuple[tuple[str, int, int], ...]] = {  # (filters, output width, height)
    "yuv_odd_width": (("fps=24,scale=199:112,crop=112:112:43:0", 112, 112),),
    "rgb_scaled": (
        ("format=rgb24,scale=398:224", 398, 224),
        ("scale=256:144,format=rgb24,scale=398:224", 398, 224),
    ),
}


@functools.cache
def planar_rgb_exact(kind: str) -> bool:
    """True when this ffmpeg's planar RGB (gbrp) output carries the same pixels as packed rgb24 for every
    filter chain of `kind` in PLANAR_CHECKS.

    swscale's packed-RGB writer is plain C and, at 24 fps, costs as much as decoding the H.264 itself; its
    planar writer is vectorised. Scaled in RGB (the 2D branch), both writers see the same planar RGB.
    Scaled in YUV to an odd width, swscale interpolates chroma at full resolution for every RGB output
    ("forcing full internal H chroma due to odd output size"), so again both see the same samples; at even
    widths packed RGB takes a cheaper chroma path and the pixels differ. Checked once per process and kind
    on this ffmpeg, not assumed: a build whose writers disagree (or that lacks the filters) keeps rgb24.
    """
    for chain, width, height in PLANAR_CHECKS[kind]:
        outputs = []
        for pix_fmt in ("rgb24", "gbrp"):
            cmd = [
                "ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", PLANAR_CHECK_SOURCE,
                "-vf", chain, "-pix_fmt", pix_fmt, "-f", "rawvideo", "-",
            ]  # fmt: skip
            try:
                done = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
            except (OSError, subprocess.TimeoutExpired):
                return False
            if done.returncode != 0 or not done.stdout:
                return False
            outputs.append(np.frombuffer(done.stdout, np.uint8))
        packed, planar = outputs
        frame = 3 * width * height
        if len(packed) != len(planar) or len(packed) % frame:
            return False
        as_rgb = interleave_gbrp(planar.reshape(-1, 3, height, width))
        if not np.array_equal(packed.reshape(-1, height, width, 3), as_rgb):
            return False
    return True


def interleave_gbrp(planes: np.ndarray) -> np.ndarray:
    """(n, 3, H, W) planes in ffmpeg's gbrp order (G, B, R) as (n, H, W, 3) RGB, one pass over the bytes."""
    n, _, h, w = planes.shape
    rgb = np.empty((n, h, w, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = planes[:, 2], planes[:, 0], planes[:, 1]
    return rgb


def output_pix_fmt(spec: StreamSpec, info: VideoInfo, exact: Callable[[str], bool] | None = None) -> str:
    """ffmpeg's raw output format for a branch: planar gbrp where it is bit-identical to rgb24 and cheaper,
    else rgb24. The 2D branch (scaled in RGB) qualifies at any size; a branch scaled in YUV only from a
    yuv420p source to an odd width (16:9 and 4:3 videos' 3D branch: 199 and 149 wide). Either way the
    frames are handed on as (n, H, W, 3) RGB. `exact`: the check of the libraries that will run the filters
    (this ffmpeg's, the default, or PyAV's: decode_av.planar_rgb_exact)."""
    exact = exact or planar_rgb_exact
    if spec.rgb_first:
        return "gbrp" if exact("rgb_scaled") else "rgb24"
    if info.pix_fmt != "yuv420p" or spec.out_size(info)[0] % 2 == 0:
        return "rgb24"
    return "gbrp" if exact("yuv_odd_width") else "rgb24"


def _branch(stream: Any, spec: StreamSpec, info: VideoInfo) -> Any:
    """One output's filters: pick frames at spec.fps, scale (short side), centre-crop."""
    width, height = spec.out_size(info)
    stream = stream.filter("fps", fps=spec.fps, round=spec.round, start_time=FPS_START_TIME)
    if spec.rgb_first:
        # Convert the picked frames to RGB at full size, then resize in RGB: the same pixels a
        # straightforward "decode to RGB, pick, resize" path gets (cheap at 1 fps).
        stream = stream.filter("format", "rgb24")
    stream = stream.filter("scale", width, height)
    if spec.crop:
        x, y = int((width - spec.crop) / 2), int((height - spec.crop) / 2)
        stream = stream.crop(x, y, spec.crop, spec.crop)
    return stream


def _command(
    path: str, specs: Mapping[str, StreamSpec], info: VideoInfo, fds: Mapping[str, int],
    pix_fmts: Mapping[str, str], threads: int, hwaccel: str | None,
) -> list[str]:  # fmt: skip
    """ffmpeg's arguments: the file decoded once, split into one raw RGB output per spec (in its pix_fmt,
    see output_pix_fmt), each to its fd.

    With -hwaccel ("cuda" or "cuda:N") the decoder runs on that GPU (NVDEC) and ffmpeg copies each frame
    back to system memory. H.264/VP9/AV1 decoding is bit-exact, but NVDEC hands frames over as NV12 (P010
    for 10-bit), not the yuv420p the CPU decoder gives, and converting NV12 straight to RGB gives other
    pixels. So the frames are first put back in the source's own format: then the filters see the CPU's
    pixels, and a video's features do not depend on which decoder ran (a test).
    """
    import ffmpeg  # the command line's graph builder: a host decoding through PyAV does not need it

    options: dict[str, Any] = dict(hwaccel_options(hwaccel, info.codec) if hwaccel else {}, threads=threads)
    if info.start_s < 0:
        # ffmpeg shifts every time stamp by minus the container's start; an offset of that start cancels
        # the shift (row_clock_origin_s: a negative start counts as 0). Exact: both are in microseconds.
        options["itsoffset"] = f"{info.start_s:.6f}"
    source = ffmpeg.input(path, **options)
    video = source.video
    if hwaccel and info.pix_fmt:
        video = video.filter("format", info.pix_fmt)
    parts = video.split() if len(specs) > 1 else None
    outputs = []
    for n, (key, spec) in enumerate(specs.items()):
        stream = _branch(parts[n] if parts is not None else video, spec, info)
        out = stream.output(f"pipe:{fds[key]}", format="rawvideo", pix_fmt=pix_fmts[key], threads=threads)
        outputs.append(out)
    merged = ffmpeg.merge_outputs(*outputs) if len(outputs) > 1 else outputs[0]
    # The filter graph gets as many threads as the decoder: ffmpeg's default (one per core) spent about a
    # fifth of each video's ffmpeg CPU time synchronising slice threads on frames this small.
    quiet = ("-nostdin", "-hide_banner", "-loglevel", "error")
    args: list[str] = merged.global_args(*quiet, "-filter_complex_threads", str(threads)).compile()
    return args


class Watchdog:
    """Kill a process once the time spent inside `with watchdog:` blocks adds up to `budget_s`."""

    def __init__(self, proc: subprocess.Popen[bytes], budget_s: float) -> None:
        self.proc, self.budget_s = proc, budget_s
        self.spent, self.fired = 0.0, False
        self.since: float | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._watch, daemon=True).start()

    def __enter__(self) -> None:
        with self._lock:
            self.since = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            if self.since is not None:
                self.spent += time.monotonic() - self.since
            self.since = None

    def _watch(self) -> None:
        while not self._done.wait(0.05):
            with self._lock:
                waiting = self.spent + (time.monotonic() - self.since if self.since is not None else 0.0)
            if waiting > self.budget_s:
                self.fired = True
                self.proc.kill()
                return

    def close(self) -> None:
        self._done.set()


def _read_output(
    handle: BinaryIO,
    key: str,
    shape: tuple[int, int, int],
    chunk: int,
    box: queue.Queue[Any],
    stop: threading.Event,
    planar: bool = False,
) -> None:
    """Read one output pipe in chunks of `chunk` frames into `box`; (key, None) once it ends. With
    `planar`, ffmpeg writes gbrp planes, handed on as (n, H, W, 3) RGB like rgb24's."""
    frame_bytes = int(np.prod(shape))
    h, w, _ = shape

    def put(item: tuple[str, np.ndarray | None]) -> None:
        put_unless_stopped(box, item, stop)

    try:
        with handle:
            while not stop.is_set():
                buf = handle.read(frame_bytes * chunk)
                n = len(buf) // frame_bytes
                if n:
                    raw = np.frombuffer(buf, np.uint8, count=n * frame_bytes)
                    # A new, writable array either way: torch.from_numpy warns on read-only buffers.
                    put(
                        (
                            key,
                            interleave_gbrp(raw.reshape(n, 3, h, w))
                            if planar
                            else raw.reshape(n, *shape).copy(),
                        )
                    )
                if len(buf) < frame_bytes * chunk:
                    break
    finally:
        put((key, None))  # always: the consumer waits for every output's end


def start_readers(
    read_ends: Mapping[str, int],
    specs: Mapping[str, StreamSpec],
    info: VideoInfo,
    planar: Collection[str] = (),
) -> tuple[queue.Queue[Any], threading.Event, list[threading.Thread]]:
    """A reader thread per output pipe (its read end by key: _read_output), all putting (key, chunk) into
    one bounded box, (key, None) at each end; setting the event frees readers blocked on a full box.
    Outputs named in `planar` come as gbrp planes."""
    box: queue.Queue[Any] = queue.Queue(maxsize=len(read_ends))
    stop = threading.Event()
    readers = [
        threading.Thread(
            target=_read_output,
            args=(
                os.fdopen(r, "rb"),
                key,
                specs[key].frame_shape(info),
                specs[key].chunk,
                box,
                stop,
                key in planar,
            ),
            daemon=True,
        )
        for key, r in read_ends.items()
    ]
    for reader in readers:
        reader.start()
    return box, stop, readers


def _drain_stderr(proc: subprocess.Popen[bytes], lines: list[bytes], hwaccel: str | None) -> None:
    """Collect ffmpeg's stderr into `lines`. A hardware run that was not refused is killed at its first
    error line (see hwaccel_failures): its pictures are not to be trusted, so the rest of its decode (and
    the encoding of what it gives) would be wasted before the CPU decodes the file again."""
    assert proc.stderr is not None
    watching = bool(hwaccel)
    for raw in proc.stderr:  # line by line, as ffmpeg logs them
        lines.append(raw)
        if not watching:
            continue
        line = raw.decode(errors="replace").strip()
        if is_hwaccel_refusal(line):
            watching = False  # refused: ffmpeg decodes in software, and later errors are the file's
        elif line:
            watching = False
            proc.kill()


def stream_outputs(
    path: str,
    specs: Mapping[str, StreamSpec],
    info: VideoInfo,
    timeout_s: float,
    threads: int = 1,
    hwaccel: str | None = None,
    report: DecodeReport | None = None,
) -> Iterator[tuple[str, np.ndarray]]:
    """Decode the file once and yield (key, uint8 (n, H, W, 3) chunk) for every spec as ffmpeg makes them;
    raise DecodeError/DecodeTimeout after the last good chunk, and HardwareDecodeFailed when the `hwaccel`
    decoder failed on pictures on the way. `report`, when given, says at the end which decoder ran:
    `hwaccel`, or the CPU when ffmpeg's hardware decoder refused the stream.

    One decode feeds all outputs (the 2D and 3D models read the same frames, so a video is decoded once, not
    once per model). Memory stays bounded by about two chunks per output whatever the video's length: ffmpeg
    blocks on its pipes while we compute. A watchdog kills ffmpeg once we have waited `timeout_s` in total
    for its output (time the consumer spends computing does not count, so a slow model never kills a
    healthy decode).
    """
    pix_fmts = {key: output_pix_fmt(spec, info) for key, spec in specs.items()}  # ffmpeg's and the readers'
    pipes = {key: os.pipe() for key in specs}
    try:
        args = _command(path, specs, info, {k: w for k, (_, w) in pipes.items()}, pix_fmts, threads, hwaccel)
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            pass_fds=[w for _, w in pipes.values()],
        )  # fmt: skip
    except BaseException:
        for r, _ in pipes.values():
            os.close(r)
        raise
    finally:
        for _, w in pipes.values():
            os.close(w)  # ffmpeg holds the write ends now: its exit is our end of file
    stderr: list[bytes] = []
    assert proc.stderr is not None
    drain = threading.Thread(target=_drain_stderr, args=(proc, stderr, hwaccel), daemon=True)
    drain.start()
    planar = {key for key, fmt in pix_fmts.items() if fmt == "gbrp"}
    box, stop, readers = start_readers({key: r for key, (r, _) in pipes.items()}, specs, info, planar)
    watchdog = Watchdog(proc, timeout_s)
    frames = dict.fromkeys(specs, 0)
    running = set(specs)
    try:
        while running:
            with watchdog:
                key, chunk = box.get()
            if chunk is None:
                running.discard(key)
                continue
            frames[key] += len(chunk)
            yield key, chunk
    finally:
        stop.set()  # readers blocked on a full box give up; ffmpeg's death ends their reads
        watchdog.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for reader in readers:
            reader.join(timeout=5)
        drain.join(timeout=5)
    if watchdog.fired:
        raise DecodeTimeout(f"decode killed after {timeout_s:.0f} s (timeout)")
    check_child(proc.returncode, "ffmpeg")  # ended by a stop signal: says nothing about the file
    refusals, text = split_hwaccel_refusals(b"".join(stderr).decode(errors="replace"))
    # Refused, ffmpeg decoded in software: its pictures are the CPU's, and its errors the file's.
    failures = hwaccel_failures(text) if hwaccel and not refusals else []
    if failures:  # whatever the exit code: the CPU decides whether the file itself is damaged
        raise HardwareDecodeFailed(" | ".join(failures[:2]))  # the first: what stopped it (see _drain_stderr)
    if report is not None:
        report.decoder = hwaccel if hwaccel and not refusals else "cpu"
        if hwaccel:
            report.fallback = _last_lines("\n".join(refusals), 2) if refusals else None
    message = _last_lines(text)
    if proc.returncode != 0:
        raise DecodeError(message or f"ffmpeg exited with {proc.returncode}")
    check_frame_counts(frames, specs, info, message)


def check_frame_counts(
    frames: Mapping[str, int], specs: Mapping[str, StreamSpec], info: VideoInfo, errors: str
) -> None:
    """DecodeError when an output got no frame, or under 90% of the video's frames with `errors` logged:
    FFmpeg goes on past damage (and ffmpeg exits 0 on a truncated file), so how much of the video came out
    is what tells a damaged file."""
    for key, spec in specs.items():
        expected = info.duration_s * spec.fps
        if frames[key] == 0 or (errors and frames[key] < 0.9 * expected):
            raise DecodeError(errors or "no frames decoded")


def stream_frames(
    path: str,
    spec: StreamSpec,
    info: VideoInfo,
    timeout_s: float,
    threads: int = 1,
    hwaccel: str | None = None,
) -> Iterator[np.ndarray]:
    """One spec's uint8 (n, H, W, 3) chunks (stream_outputs with a single output; with `hwaccel`, no CPU
    fallback: use decode_outputs for that)."""
    for _, chunk in stream_outputs(path, {"frames": spec}, info, timeout_s, threads, hwaccel):
        yield chunk


def decode_outputs(
    path: str,
    specs: Mapping[str, StreamSpec],
    info: VideoInfo,
    timeout_s: float,
    hwaccel: str | None = None,
    report: DecodeReport | None = None,
    on_restart: Callable[[str], None] | None = None,
    decoder: str = "ffmpeg",
) -> Iterator[tuple[str, np.ndarray]]:
    """stream_outputs, on the `hwaccel` decoder when given; a file it cannot start on is decoded on the CPU.
    `report` says which decoder did the work (see stream_outputs). `decoder`: "ffmpeg" (the command line)
    or "pyav" (FFmpeg's libraries in process, tasks/features/decode_av.py), or "pyav-child" (the same in
    long-lived child processes, tasks/features/decode_child.py): the same frames every way. "pyav-gpu"
    (tasks/features/decode_device.py) yields torch tensors on the `hwaccel` GPU, close to those frames.

    NVDEC lacks some codecs and profiles (and a GPU can run out of decoder sessions); the CPU fallback makes
    that a slower video, never a failed one. When a hardware run logs errors (see hwaccel_failures), the
    chunks it gave may be wrong: `on_restart(reason)` is called, the caller drops every chunk it got, and
    the file is decoded again on the CPU from its first frame, with a time budget of its own (so such a
    video may take up to twice `timeout_s`). Without `on_restart` that is a DecodeError. The CPU's decode
    decides whether the file itself is damaged.
    """
    report = report if report is not None else DecodeReport()
    stream = outputs_of(decoder)
    if hwaccel:
        produced = False
        try:
            for item in stream(path, specs, info, timeout_s, hwaccel=hwaccel, report=report):
                produced = True
                yield item
            if report.fallback:
                log.info(
                    "%s decoder refused %s (%s): ffmpeg decoded it on the CPU", hwaccel, path, report.fallback
                )
            return
        except HardwareDecodeFailed as exc:
            reason = f"failed mid-stream: {exc}"
            if produced:
                if on_restart is None:
                    raise DecodeError(f"the {hwaccel} decoder {reason}") from exc
                on_restart(reason)
            log.warning("%s decoder %s on %s; decoding it again on the CPU", hwaccel, reason, path)
            report.fallback = reason
        except DecodeError as exc:
            if produced:
                raise
            log.info("%s decoder could not start on %s (%s); decoding on the CPU", hwaccel, path, exc)
            report.fallback = str(exc)
    yield from stream(path, specs, info, timeout_s, report=report)


DECODERS = ("ffmpeg", "pyav", "pyav-child", "pyav-gpu")


def _known(decoder: str) -> None:
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r}: one of {', '.join(DECODERS)}")


def outputs_of(decoder: str) -> Callable[..., Iterator[tuple[str, np.ndarray]]]:
    """The stream_outputs of a decoder: "ffmpeg" (this module's, the command line), "pyav" (in process) or
    "pyav-child" (PyAV in long-lived child processes), or "pyav-gpu" (frames kept on the GPU: torch tensors
    there)."""
    _known(decoder)
    if decoder == "pyav-child":
        from tasks.features import decode_child

        return decode_child.stream_outputs
    if decoder == "pyav-gpu":
        from tasks.features import decode_device

        return decode_device.stream_outputs
    if decoder == "pyav":
        from tasks.features import decode_av  # imports this module: loaded on first use

        return decode_av.stream_outputs
    return stream_outputs


def probe_with(decoder: str, path: str, timeout_s: float = 30.0) -> VideoInfo:
    """probe through ffprobe ("ffmpeg") or through PyAV ("pyav", or in a child: "pyav-child"): the same
    VideoInfo."""
    _known(decoder)
    if decoder == "pyav-child":
        from tasks.features import decode_child

        return decode_child.probe(path, timeout_s)
    if decoder in ("pyav", "pyav-gpu"):
        from tasks.features import decode_av

        return decode_av.probe(path, timeout_s)
    return probe(path, timeout_s)


def as_clips(chunk: Rows) -> Rows:
    """Frames (n, H, W, 3) as 16-frame clips (ceil(n / 16), 16, H, W, 3), the last zero-padded (reference rule);
    a numpy array or a torch tensor (frames kept on the GPU) alike."""
    chunk = pad_with_zeros(chunk, len(chunk) + (-len(chunk) % CLIP_FRAMES))
    return chunk.reshape(-1, CLIP_FRAMES, *chunk.shape[1:])
