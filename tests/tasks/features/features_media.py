"""Generated test videos (ffmpeg) for the feature tests; skipped with a reason if ffmpeg is missing."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tasks.features.decode import SPEC_2D, SPEC_3D, DecodeReport, decode_outputs, probe_with

W, H = 320, 240


def decoded_outputs(path: Path, decoder: str, report: DecodeReport | None = None) -> dict[str, np.ndarray]:
    """Probe and decode `path` through `decoder` into the 2D and 3D outputs (keys "2d", "3d"), whole."""
    specs = {"2d": SPEC_2D, "3d": SPEC_3D}
    info = probe_with(decoder, str(path))
    got: dict[str, list[np.ndarray]] = {key: [] for key in specs}
    for key, chunk in decode_outputs(str(path), specs, info, 60, report=report, decoder=decoder):
        got[key].append(chunk)
    return {key: np.concatenate(chunks) for key, chunks in got.items()}


def _need_ffmpeg() -> None:
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        pytest.skip("ffmpeg/ffprobe not installed (setup installs them)")


def encode_frames(path: Path, frames: np.ndarray, rate: str, faststart: bool = False) -> Path:
    """Encode uint8 (n, H, W, 3) frames as H.264 at `rate` (a string such as "25" or "30000/1001")."""
    _need_ffmpeg()
    n, h, w, _ = frames.shape
    cmd = [
        "ffmpeg",
        "-v",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{w}x{h}",
        "-r",
        rate,
        "-i",
        "-",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-threads",
        "1",
    ]
    cmd += ["-movflags", "+faststart"] if faststart else []
    subprocess.run([*cmd, str(path)], input=frames.tobytes(), check=True)
    return path


def make_testsrc(
    path: Path, size: str, rate: str, seconds: float, *extra: str, codec: str = "libx264"
) -> Path:
    """ffmpeg's testsrc2 (sharp coloured edges: any shift of a pixel or of chroma shows), H.264 in yuv420p
    unless `codec` or `extra` (options before the codec's: filters, -pix_fmt, colour tags) say otherwise."""
    _need_ffmpeg()
    source = f"testsrc2=size={size}:rate={rate}:duration={seconds}"
    fast = ["-preset", "ultrafast"] if codec == "libx264" else ["-b:v", "300k", "-deadline", "realtime"]
    pix_fmt = [] if "-pix_fmt" in extra else ["-pix_fmt", "yuv420p"]
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source, *extra, "-c:v", codec, *fast]
    subprocess.run([*cmd, *pix_fmt, "-threads", "1", str(path)], check=True)
    return path


def index_frames(n: int) -> np.ndarray:
    """Frame k shows k in binary as 10 black/white bars: readable after any scaling."""
    frames = np.zeros((n, H, W, 3), np.uint8)
    for k in range(n):
        for b in range(10):
            if k >> b & 1:
                frames[k, :, b * 16 : b * 16 + 16] = 255
    return frames


def read_index(frame: np.ndarray) -> int:
    """The number index_frames wrote into a (possibly rescaled) frame."""
    h, w, _ = frame.shape
    return sum(1 << b for b in range(10) if frame[h // 2, int((b * 16 + 8) * w / W), 0] > 128)


def smooth_frames(n: int, seed: int = 0) -> np.ndarray:
    """Moving colour blobs on a gradient: natural-ish content whose features are stable under resizing."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    centres = rng.uniform(0, 1, (4, 2)) * [W, H]
    speeds = rng.uniform(-2, 2, (4, 2))
    colours = rng.uniform(0, 255, (4, 3))
    frames = np.empty((n, H, W, 3), np.uint8)
    for k in range(n):
        img = np.stack([xx / W * 200, yy / H * 200, np.full_like(xx, 80)], axis=-1)
        for (cx, cy), (vx, vy), c in zip(centres, speeds, colours, strict=True):
            d2 = (xx - cx - vx * k) ** 2 + (yy - cy - vy * k) ** 2
            img += np.exp(-d2 / 400)[..., None] * (c - img)
        frames[k] = np.clip(img, 0, 255).astype(np.uint8)
    return frames


# ffmpeg with -hwaccel cuda on a stream NVDEC does not decode (H.264 High 10, say) logs the first two lines
# (as libavcodec/nvdec.c and decode.c print them, and real logs show) and then decodes in software, exit 0.
# The third is a damaged file's own error (h264_slice.c), which must stay the file's.
REFUSED_STDERR = """\
[h264 @ 0x55d1c2f4a8c0] Hardware is lacking required capabilities
[h264 @ 0x55d1c2f4a8c0] Failed setup for format cuda: hwaccel initialisation returned error.
[h264 @ 0x55d1c2f4a8c0] error while decoding MB 12 7, bytestream -7
"""


# What ffmpeg logs when NVDEC, having started, fails on pictures (h264_picture.c when the hwaccel's end_frame
# fails; nvdec.c's CUDA check naming the call): ffmpeg goes on, the fps filter repeats the frame before, and
# it exits 0.
FAILED_STDERR = """\
[h264 @ 0x5610e7a3c2c0] decoder->cvdl->cuvidDecodePicture(decoder->decoder, &ctx->pic_params) failed -> \
CUDA_ERROR_LAUNCH_FAILED: unspecified launch failure
[h264 @ 0x5610e7a3c2c0] hardware accelerator failed to decode picture
"""


def fake_nvdec_path(
    tmp_path: Path, refuse: bool = False, fail_with: Path | None = None, fail_at_start: bool = False
) -> str:
    """A PATH holding an `ffmpeg` that stands in for one with NVDEC: it drops the -hwaccel options and runs
    the real ffmpeg on the CPU. What a run with -hwaccel does besides:
    - `refuse`: first prints what ffmpeg prints when NVDEC refuses a stream, and a damaged file's error (and
      then, as the real one does, decodes in software and exits 0);
    - `fail_with`: decodes that file instead of its input (wrong pictures of the right size and count, as a
      failing NVDEC gives) and then prints what ffmpeg prints when NVDEC fails mid-stream, exit 0;
    - `fail_at_start`: prints those failure lines and then hangs, giving no frame, until it is killed."""
    assert refuse + bool(fail_with) + fail_at_start <= 1, "one way for the stand-in NVDEC to behave"
    real = subprocess.run(["sh", "-c", "command -v ffmpeg"], capture_output=True, text=True).stdout.strip()
    folder = tmp_path / ("refusing" if refuse else "failing" if fail_with or fail_at_start else "accepting")
    folder.mkdir()
    refused, failed = (
        "".join(f"echo '{line}' >&2; " for line in text.splitlines())
        for text in (REFUSED_STDERR, FAILED_STDERR)
    )
    swap = f'elif [ "$hw$prev" = yes-i ]; then set -- "$@" "{fail_with}"; ' if fail_with else ""
    if refuse:
        hardware = refused
    elif fail_with:
        hardware = f'{real} "$@"; rc=$?; {failed}exit $rc; '
    elif fail_at_start:
        hardware = f"{failed}exec sleep 600; "
    else:
        hardware = ""
    script = folder / "ffmpeg"
    script.write_text(
        "#!/bin/sh\n"
        'hw=no; skip=no; prev=; for a in "$@"; do shift; if [ "$skip" = yes ]; then skip=no; '
        'elif [ "$a" = -hwaccel ] || [ "$a" = -hwaccel_device ]; then skip=yes; hw=yes; '
        f'{swap}else set -- "$@" "$a"; fi; prev=$a; done\n'
        f'if [ "$hw" = yes ]; then {hardware}:; fi\n'
        f'exec {real} "$@"\n'
    )
    script.chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ['PATH']}"


def with_display_rotation(src: Path, dst: Path, rotation: int) -> Path:
    """Copy a one-track MP4, setting its track header's display matrix as a phone does for a video shot
    upright: the pixels stay stored as encoded, and players (and ffmpeg, which auto-rotates) turn them by
    `rotation` degrees, ffprobe's sign (-90: shown turned a quarter clockwise). ffmpeg 5 cannot write the
    matrix itself (its -display_rotation came in 6.0), so the 36 bytes are written into `tkhd`."""
    data = bytearray(src.read_bytes())
    assert data.count(b"tkhd") == 1, "one video track expected"
    at = data.index(b"tkhd") + 4
    version = data[at]
    # version/flags, then times, track id, reserved and duration (32- or 64-bit), reserved,
    # layer, alternate group, volume, reserved: the matrix follows (ISO/IEC 14496-12, 8.3.2).
    matrix_at = at + 4 + (20 if version == 0 else 32) + 8 + 8
    turns = {-90: (0, 1, -1, 0), 90: (0, -1, 1, 0), 180: (-1, 0, 0, -1), 0: (1, 0, 0, 1)}[rotation]
    a, b, c, d = (v * 65536 for v in turns)
    data[matrix_at : matrix_at + 36] = struct.pack(">9i", a, b, 0, c, d, 0, 0, 0, 1 << 30)
    dst.write_bytes(bytes(data))
    return dst


CRASHING_OPEN = """
import os, signal
import av

_open = av.open


def _open_or_crash(file, *args, **kwargs):
    if "crashvid" in str(file):
        os.kill(os.getpid(), signal.SIGSEGV)  # what a decoder bug on this file does to its process
    return _open(file, *args, **kwargs)


av.open = _open_or_crash
"""


def crash_hook(folder: Path) -> Path:
    """A folder whose sitecustomize makes PyAV's open SIGSEGV its process for files named *crashvid*:
    put it on a child's PYTHONPATH (a real crashing file is not something to ship)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(CRASHING_OPEN)
    return folder


def crash_on_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Child processes started from now on crash in PyAV's open for files named *crashvid*."""
    hook = crash_hook(tmp_path / "crash-hook")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")])))
