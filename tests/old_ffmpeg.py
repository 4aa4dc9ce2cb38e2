"""A stand-in for FFmpeg 3.x: the real ffmpeg, except that its mp4 muxer refuses a stream-copied VP9 as 3.4 does
without `-strict experimental` (what yt-dlp's merger and the doctor's merge probe ask of it)."""

from __future__ import annotations

import shutil
from pathlib import Path


def ffmpeg3_on_path(folder: Path) -> str:
    """Write the stand-in as `folder`/ffmpeg; returns a PATH with it first and the real ffprobe after."""
    folder.mkdir(parents=True, exist_ok=True)
    stand_in = folder / "ffmpeg"
    stand_in.write_text(
        "#!/bin/sh\n"
        'case " $* " in *" -c copy "*.mp4" "*)\n'
        "  echo \"[mp4 @ 0x5581] VP9 in MP4 support is experimental, add '-strict -2' if you want to use it.\" >&2\n"
        "  echo 'Could not write header for output file #0 (incorrect codec parameters ?): Experimental feature' >&2\n"
        "  exit 1;;\n"
        "esac\n"
        f'exec {shutil.which("ffmpeg")} "$@"\n'
    )
    stand_in.chmod(0o755)
    return f"{folder}:{Path(shutil.which('ffprobe') or '').parent}"
