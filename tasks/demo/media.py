"""Encode a demo video (numpy frames piped to ffmpeg, a generated mono track for audio) into H.264 + AAC mp4."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterable
from pathlib import Path

from tasks.demo.visuals import FPS, HEIGHT, WIDTH


class FFmpegMissing(RuntimeError):
    """ffmpeg is not on PATH; the demo world cannot render its videos."""


def ffmpeg_bin() -> str:
    """Path of the ffmpeg executable, or raise FFmpegMissing."""
    path = shutil.which("ffmpeg")
    if path is None:
        raise FFmpegMissing("ffmpeg not found on PATH: install it (apt-get install ffmpeg)")
    return path


AUDIO_BITRATE = "32k"  # mono 16 kHz AAC: small, and transparent enough for 64-bin log-mels


def encode_mp4(out: Path, frames: Iterable[bytes], pcm: bytes, sample_rate: int) -> None:
    """Write frames (yuv420p, WIDTHxHEIGHT at FPS) with `pcm` (mono s16le) as AAC audio to out, atomically."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp.mp4")
    # The track goes through a file: stdin already carries the frames.
    pcm_path = out.with_name(f".{out.name}.{os.getpid()}.{threading.get_ident()}.tmp.pcm")
    pcm_path.write_bytes(pcm)
    cmd = [
        ffmpeg_bin(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "yuv420p",
        "-s",
        f"{WIDTH}x{HEIGHT}",
        "-r",
        str(FPS),
        "-i",
        "-",
        "-f",
        "s16le",
        "-ar",
        str(sample_rate),
        "-ac",
        "1",
        "-i",
        str(pcm_path),
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-threads",
        "1",  # builds run one encoder per core; more threads only thrash the 2-core box
        "-c:a",
        "aac",
        "-b:a",
        AUDIO_BITRATE,
        "-shortest",
        "-movflags",
        "+faststart",
        str(tmp),
    ]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    try:
        for frame in frames:
            proc.stdin.write(frame)
        proc.stdin.close()
    except BrokenPipeError:
        pass  # ffmpeg died; its stderr below says why
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    code = proc.wait()
    pcm_path.unlink(missing_ok=True)
    if code != 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"ffmpeg failed writing {out}: {err.strip()[-500:]}")
    os.replace(tmp, out)
