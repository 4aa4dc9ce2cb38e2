"""Video download options (pure): the smallest format with short side >= 224, H.264 preferred; resume and
disk guard. YoutubeClient.video runs the download through the client's one call loop."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIN_SHORT_SIDE = 224
# Filters keep formats whose short side is >= 224; the ascending sort then makes "best" the smallest
# such file. H.264 first (cheapest to decode, always readable); if nothing reaches 224, "wv*" under
# the same ascending sort is the largest format there is.
_SIZE = f"[height>={MIN_SHORT_SIDE}][width>={MIN_SHORT_SIDE}]"
FORMAT = f"bv*{_SIZE}[vcodec~='^(avc|h264)']/bv*{_SIZE}/wv*"
FORMAT_SORT = ["+res", "+size", "+br", "+fps"]
VIDEO_EXTS = (".mp4", ".webm", ".mkv", ".mov", ".flv", ".3gp")


class DiskSpaceLow(RuntimeError):
    """Less free space than the guard allows: stop downloading (finished work is kept)."""


@dataclass(frozen=True)
class DownloadSettings:
    """Where files go and the disk guard."""

    out_dir: Path
    min_free_gb: float = 2.0


def existing_download(out_dir: Path, video_id: str) -> Path | None:
    """A finished file from an earlier run (yt-dlp's .part files are not finished)."""
    for path in sorted(out_dir.glob(f"{video_id}.*")):
        if path.suffix in VIDEO_EXTS and path.is_file() and path.stat().st_size > 0:
            return path
    return None


def check_disk(out_dir: Path, min_free_gb: float) -> None:
    """Raise DiskSpaceLow when the download folder's file system has less than `min_free_gb` free."""
    out_dir.mkdir(parents=True, exist_ok=True)
    free_gb = shutil.disk_usage(out_dir).free / 1e9
    if free_gb < min_free_gb:
        raise DiskSpaceLow(f"{out_dir}: only {free_gb:.1f} GB free, need {min_free_gb:.1f} GB (min_free_gb)")


def download_params(settings: DownloadSettings, video_id: str) -> dict[str, Any]:
    """YoutubeDL params for a resumable video download into `{out_dir}/{video_id}.{ext}`."""
    return {
        "skip_download": False,
        "format": FORMAT,
        "format_sort": FORMAT_SORT,
        "outtmpl": {"default": str(settings.out_dir / f"{video_id}.%(ext)s")},
        "continuedl": True,  # resume a .part file left by an interrupted run
        "nopart": False,
        "overwrites": False,
        "noplaylist": True,
        "writesubtitles": False,
        "writeautomaticsub": False,
    }
