"""Encode a demo video (numpy frames piped to ffmpeg, a tone for audio) into H.264 + AAC mp4."""

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


TONE_S = 90  # longer than any demo video (< 60 s), so one encoded tone serves them all


def tone_m4a(directory: Path, tone_hz: int) -> Path:
    """A quiet AAC tone, encoded once per frequency and stream-copied into every video that uses it
    (encoding AAC per video cost as much CPU as the H.264 encode)."""
    path = directory / f"tone-{tone_hz}hz-{TONE_S}s.m4a"
    if path.exists():
        return path
    directory.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp.m4a")
    cmd = [ffmpeg_bin(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
           f"sine=frequency={tone_hz}:sample_rate=22050:duration={TONE_S}", "-filter:a", "volume=0.2",
           "-c:a", "aac", "-b:a", "48k", str(tmp)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"ffmpeg failed writing {path}: {done.stderr.strip()[-500:]}")
    os.replace(tmp, path)
    return path


def encode_mp4(out: Path, frames: Iterable[bytes], tone: Path) -> None:
    """Write frames (yuv420p, WIDTHxHEIGHT at FPS) with the tone's audio as out, atomically."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp.mp4")
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
        "-i",
        str(tone),
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
        "copy",
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
    if proc.wait() != 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"ffmpeg failed writing {out}: {err.strip()[-500:]}")
    os.replace(tmp, out)
