"""Video download options (pure): the smallest format with short side >= 224, H.264 preferred; resume,
disk guard and size cap. YoutubeClient.video runs the download through the client's one call loop."""

from __future__ import annotations

import math
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.youtube.stream_cap import stream_cap_hook

MIN_SHORT_SIDE = 224
# Filters keep formats whose short side is >= 224; the ascending sort then makes "best" the smallest
# such file. H.264 first (cheapest to decode, always readable); if nothing reaches 224, "wv*" under
# the same ascending sort is the largest format there is.
_SIZE = f"[height>={MIN_SHORT_SIDE}][width>={MIN_SHORT_SIDE}]"
_VIDEO = (f"bv*{_SIZE}[vcodec~='^(avc|h264)']", f"bv*{_SIZE}", "wv*")
# Audio rides along (the audio_features stage reads it): each video choice is first tried merged with
# an audio stream ("+ba", for sites that split formats, as YouTube does); a format that already has
# audio keeps its own (yt-dlp drops the second audio stream); the bare video choices come last, so a
# video offered without any audio still downloads (its audio rows then say no_audio).
# A video with dubbed tracks (YouTube's multi-language audio) offers each format once per language, and
# an audio description track: the ascending sort alone would take whichever is smallest, so the spoken
# language is chosen first: the original track (yt-dlp's language_preference 10), else the player's
# default (5), else (one language, or a site that says nothing) any. Under the ascending sort "ba" is then
# the smallest audio stream of that language, which is plenty for 16 kHz log-mels.
_AUDIO = "ba[language_preference>=10]/ba[language_preference>=5]/ba"
FORMAT = "/".join([f"{v}+({_AUDIO})" for v in _VIDEO] + list(_VIDEO))
# The audio stage's own fetch, for a video whose track was not kept beside its features: audio alone
# when offered, else the smallest file that has audio.
AUDIO_FORMAT = f"{_AUDIO}/b[acodec!=none]/bv*+({_AUDIO})"
# Without an ffmpeg to merge with (a host that decodes through PyAV may have none) yt-dlp stops at any "+"
# choice ("You have requested merging of multiple formats but ffmpeg is not installed"), which every split
# YouTube format is, even where one file would do: so there one file is asked for, the same video choices
# with their own audio first (YouTube's 360p format 18), else the video alone (its audio is then fetched by
# the audio stage, which needs ffmpeg anyway).
FORMAT_ONE_FILE = "/".join([f"{v}[acodec!=none]" for v in _VIDEO] + list(_VIDEO))
AUDIO_FORMAT_ONE_FILE = f"{_AUDIO}/b[acodec!=none]"
_ONE_FILE = {FORMAT: FORMAT_ONE_FILE, AUDIO_FORMAT: AUDIO_FORMAT_ONE_FILE}
# Standard dynamic range before any size: an HDR format (VP9.2/AV1 HDR10, HLG, Dolby Vision), decoded without
# tone mapping, gives washed-out frames, and YouTube offers an SDR one of each size beside it.
FORMAT_SORT = ["+hdr", "+res", "+size", "+br", "+fps"]
# The container of a merge: yt-dlp takes mp4 for H.264/AV1 + AAC and webm for VP9/AV1 + Opus, and Matroska
# for a pair neither names, such as VP9 + AAC (a VP9-only video whose smallest audio is AAC). Matroska keeps
# Opus's start delay (CodecDelay) but not AAC's (its 1024 priming samples, which the mp4's edit list cuts):
# ffmpeg's merge then shifted the whole file 21 ms later (the video stream started at 21 ms, the audio's
# priming at 0), so frame rows and audio rows both sat 21 ms late against the captions. MP4 keeps the edit
# list and holds VP9 and AV1 as well as H.264 and HEVC, so such a merge goes there.
_MP4_VIDEO = ("avc1", "avc3", "h264", "hev1", "hvc1", "hevc", "h265", "vp09", "vp9", "av01", "av1")
_AAC = ("mp4a", "aac")
VIDEO_EXTS = (".mp4", ".webm", ".mkv", ".mov", ".flv", ".3gp", ".m4a", ".opus", ".ogg", ".mka", ".mp3")
# Media caps, drop reasons in the order checked (a failed row's error starts with the reason).
TOO_LARGE = "too_large"  # the chosen format is past the size cap (checked before any media request)
TOO_LONG = "too_long"  # the downloaded media lasts longer than the duration cap


class DiskSpaceLow(RuntimeError):
    """Less free space than the guard allows: stop downloading (finished work is kept)."""


@dataclass(frozen=True)
class DownloadSettings:
    """Where files go, the disk guard, and the size cap (None: no cap)."""

    out_dir: Path
    min_free_gb: float = 2.0
    max_bytes: int | None = None
    format: str = FORMAT


def existing_download(out_dir: Path, video_id: str) -> Path | None:
    """A finished file from an earlier run (yt-dlp's .part files are not finished, nor are the
    per-format pieces `<id>.f137.mp4` / `<id>.f140.m4a` of a merge that has not happened yet)."""
    for path in sorted(out_dir.glob(f"{video_id}.*")):
        if path.stem == video_id and path.suffix in VIDEO_EXTS and path.is_file() and path.stat().st_size > 0:
            return path
    return None


def check_disk(out_dir: Path, min_free_gb: float) -> None:
    """Raise DiskSpaceLow when the download folder's file system has less than `min_free_gb` free."""
    out_dir.mkdir(parents=True, exist_ok=True)
    free_gb = shutil.disk_usage(out_dir).free / 1e9
    if free_gb < min_free_gb:
        raise DiskSpaceLow(f"{out_dir}: only {free_gb:.1f} GB free, need {min_free_gb:.1f} GB (min_free_gb)")


def selected_size(info: Mapping[str, Any]) -> int | None:
    """Bytes of the format(s) yt-dlp selected in a processed info dict (exact or approximate); None if
    no size is known, for one of the merged formats."""
    formats = info.get("requested_formats") or [info]
    total = 0
    for f in formats:
        size = _known_size(f) if isinstance(f, Mapping) else None
        if size is None:
            return None
        total += size
    return total


def _known_size(fmt: Mapping[str, Any]) -> int | None:
    """`filesize`, else `filesize_approx`, where it is a finite positive number: an info file may hold
    `Infinity` or `NaN` (json reads both), which int() refuses."""
    for key in ("filesize", "filesize_approx"):
        size = fmt.get(key)
        if isinstance(size, int | float) and not isinstance(size, bool) and 0 < size < math.inf:
            return int(size)
    return None


def one_file_format(spec: str) -> str:
    """Our format `spec` without its merges, for a yt-dlp that cannot merge (any other spec as it is)."""
    return _ONE_FILE.get(spec, spec)


def merge_container(chosen: Mapping[str, Any]) -> str | None:
    """yt-dlp's `merge_output_format` for the formats it selected (a processed info dict): "mp4" where it
    would merge AAC audio into Matroska beside a video codec mp4 holds; else None, yt-dlp's own choice."""
    formats = chosen.get("requested_formats")
    if chosen.get("ext") != "mkv" or not isinstance(formats, list | tuple):
        return None
    video = [_codec(f, "vcodec") for f in formats if isinstance(f, Mapping) and _codec(f, "vcodec")]
    audio = [_codec(f, "acodec") for f in formats if isinstance(f, Mapping) and _codec(f, "acodec")]
    if len(video) == 1 and len(audio) == 1 and video[0] in _MP4_VIDEO and audio[0] in _AAC:
        return "mp4"
    return None


def _codec(fmt: Mapping[str, Any], key: str) -> str:
    """A format's codec family as RFC 6381 names it ("vp09.00.21.08" -> "vp09"); "" for none or unknown."""
    codec = str(fmt.get(key) or "").split(".")[0].strip().lower()
    return "" if codec == "none" else codec


def download_params(settings: DownloadSettings) -> dict[str, Any]:
    """YoutubeDL params for resumable video downloads into `settings.out_dir`; the client sets the
    per-video `outtmpl` ({out_dir}/{video_id}.{ext}) before each download."""
    return {
        "skip_download": False,
        "format": settings.format,
        "format_sort": FORMAT_SORT,
        "outtmpl": {"default": str(settings.out_dir / "%(id)s.%(ext)s")},
        "continuedl": True,  # resume a .part file left by an interrupted run
        "nopart": False,
        "overwrites": False,
        "noplaylist": True,
        "writesubtitles": False,
        "writeautomaticsub": False,
        # The backstop for a size only the server tells (Content-Length): yt-dlp skips the file.
        "max_filesize": settings.max_bytes,
        # And for a size nobody tells (no Content-Length, fragments): stopped once past the cap.
        "progress_hooks": [] if settings.max_bytes is None else [stream_cap_hook(settings.max_bytes)],
    }
