"""Stand-ins for ffmpeg on PATH: FFmpeg 3.x (the real ffmpeg, except that its mp4 muxer refuses a stream-copied VP9
as 3.4 does without `-strict experimental`, what yt-dlp's merger and the doctor's merge probe ask of it), and an
ffmpeg whose merges fail while a file exists (a full temp disk), into any container."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

_REFUSE_VP9_IN_MP4 = (
    'case " $* " in *" -c copy "*.mp4" "*)\n'
    "  echo \"[mp4 @ 0x5581] VP9 in MP4 support is experimental, add '-strict -2' if you want to use it.\" >&2\n"
    "  echo 'Could not write header for output file #0 (incorrect codec parameters ?): Experimental feature' >&2\n"
    "  exit 1;;\n"
    "esac\n"
)


def ffmpeg3_on_path(folder: Path, full_while: Path | None = None) -> str:
    """Write the FFmpeg 3.x stand-in as `folder`/ffmpeg; returns a PATH with it first and the real ffprobe after.
    `full_while`: every merge (`-c copy`) fails, into any container, while that file exists."""
    return _stand_in(folder, old=True, full_while=full_while)


def ffmpeg_on_path(folder: Path, full_while: Path) -> str:
    """Write the real ffmpeg as `folder`/ffmpeg, except that every merge fails while `full_while` exists."""
    return _stand_in(folder, old=False, full_while=full_while)


def _stand_in(folder: Path, old: bool, full_while: Path | None) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    stand_in = folder / "ffmpeg"
    full = ""
    if full_while is not None:
        full = (
            f"if [ -e {shlex.quote(str(full_while))} ]; then\n"
            '  case " $* " in *" -c copy "*) echo "merged: No space left on device" >&2; exit 1;; esac\n'
            "fi\n"
        )
    stand_in.write_text(
        "#!/bin/sh\n" + full + (_REFUSE_VP9_IN_MP4 if old else "") + f'exec {shutil.which("ffmpeg")} "$@"\n'
    )
    stand_in.chmod(0o755)
    return f"{folder}:{Path(shutil.which('ffprobe') or '').parent}"
