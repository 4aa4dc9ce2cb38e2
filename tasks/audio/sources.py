"""Where a video's audio comes from: the track kept beside its features download, the kept video file,
or (neither there) an audio-only fetch through the one YouTube client, with its politeness and resume."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Collection
from pathlib import Path

from storage.layout import DataRoot
from storage.private_temp import private_temp_dir
from tasks.audio.decode import AUDIO_ONLY
from tasks.interrupts import cut_by_interrupt
from tasks.youtube.client import YoutubeClient
from tasks.youtube.video_download import AUDIO_FORMAT, DownloadSettings, existing_download

TRACK_EXT = ".mka"  # Matroska holds any audio codec (AAC, Opus, Vorbis) without re-encoding
# ...but ffmpeg's Matroska muxer drops AAC's start delay (its 1024 priming samples, cut by the mp4's edit
# list): kept as .mka, an AAC track started 21 ms late at 48 kHz (128 ms at 8 kHz). An mp4-family download
# keeps its track in .m4a, which keeps the edit list; a codec .m4a cannot hold (Opus, MP3 in an mp4) goes
# to .mka as before.
AAC_TRACK_EXT = ".m4a"
TRACK_EXTS = (AAC_TRACK_EXT, TRACK_EXT)
MP4_FAMILY = (".mp4", ".m4a", ".m4v", ".mov", ".3gp")
NO_AUDIO_EXT = ".noaudio"  # the downloaded file had no audio stream
UNREADABLE_EXT = ".unreadable"  # ffmpeg could not even copy the stream; holds its message


def track_dir(root: DataRoot) -> Path:
    """Kept tracks live under the data root when it is local, else in a temp folder of this user's alone
    (a track found there is used, and markers are written into it by name)."""
    if root.is_local:
        return Path(root.path("_work", "audio"))
    return private_temp_dir("howto-audio")


def keep_track(video: Path, out_dir: Path, video_id: str) -> None:
    """Copy the audio stream (AUDIO_ONLY's pick) of a downloaded video beside the data (no re-encode: ~1/10
    of the file, tens of ms), or record that it has none; called before the features stage deletes the video."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if any((out_dir / f"{video_id}{ext}").exists() for ext in (*TRACK_EXTS, NO_AUDIO_EXT, UNREADABLE_EXT)):
        return
    message = ""
    for ext in TRACK_EXTS if video.suffix.lower() in MP4_FAMILY else (TRACK_EXT,):
        outcome, message = _copy_track(video, out_dir / f"{video_id}{ext}")
        if outcome in (
            "kept",
            "stopped",
        ):  # stopped: nothing recorded, the audio stage fetches the track later
            return
        if outcome == "no_audio":
            (out_dir / f"{video_id}{NO_AUDIO_EXT}").write_text("")
            return
    (out_dir / f"{video_id}{UNREADABLE_EXT}").write_text(message[-500:])


def _copy_temp(target: Path) -> Path:
    """Where the copy is made before its rename: `.<id>.<pid>.tmp<ext>` (the pid: a process of this machine
    copying the same video for another data root, in the temp folder remote roots share, never writes it)."""
    return target.with_name(f".{target.stem}.{os.getpid()}.tmp{target.suffix}")


_COPY_TEMP = re.compile(r"\.(?P<id>[^./]+)\.(?P<pid>\d+)\.tmp\.[^./]+")


def remove_killed_copies(out_dir: Path, video_ids: Collection[str]) -> list[Path]:
    """Delete the temp files of track copies of these videos that a kill cut short (up to a tenth of a video
    each; nothing removed them). Called by the features shard that copies them, under its lock: a run copying
    them on a local root is gone. A copy by a live process of this machine other than this one stays (the temp
    folder of remote roots is shared and not locked). Returns their paths."""
    ids = set(video_ids)
    removed = []
    try:
        with os.scandir(out_dir) as listing:  # one listing: the folder holds a track per video
            entries = list(listing)
    except FileNotFoundError:
        return []
    for entry in entries:
        found = _COPY_TEMP.fullmatch(entry.name)
        if found is None or found["id"] not in ids:
            continue
        pid = int(found["pid"])
        if pid != os.getpid() and _alive(pid):
            continue
        Path(entry.path).unlink(missing_ok=True)
        removed.append(Path(entry.path))
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _copy_track(video: Path, target: Path) -> tuple[str, str]:
    """Copy the track into `target`: ("kept" | "no_audio" | "stopped" | "failed", ffmpeg's message)."""
    tmp = _copy_temp(target)
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(video),
           *AUDIO_ONLY, "-c", "copy", str(tmp)]  # fmt: skip
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    except (subprocess.TimeoutExpired, OSError) as exc:
        # Never fail the features shard over audio: with nothing recorded, the audio stage fetches it.
        tmp.unlink(missing_ok=True)
        return "stopped", str(exc)
    message = done.stderr.decode(errors="replace").strip()
    if cut_by_interrupt(done.returncode):
        # A stop signal (Ctrl-C, SIGTERM), not the file: with nothing recorded, the audio stage fetches the track later.
        tmp.unlink(missing_ok=True)
        return "stopped", message
    if done.returncode == 0 and tmp.exists() and tmp.stat().st_size > 0:
        os.replace(tmp, target)
        return "kept", message
    tmp.unlink(missing_ok=True)
    if done.returncode == 0 or "does not contain any stream" in message or "matches no streams" in message:
        return "no_audio", message
    return "failed", message or f"exit {done.returncode}"


def kept_outcome(out_dir: Path, video_id: str) -> tuple[str, Path | None, str | None]:
    """('track', path, None), ('no_audio', None, None), ('unreadable', None, message) or ('missing', ...)."""
    for ext in TRACK_EXTS:
        track = out_dir / f"{video_id}{ext}"
        if track.exists():
            return "track", track, None
    if (out_dir / f"{video_id}{NO_AUDIO_EXT}").exists():
        return "no_audio", None, None
    bad = out_dir / f"{video_id}{UNREADABLE_EXT}"
    if bad.exists():
        return "unreadable", None, bad.read_text()
    return "missing", None, None


def fetch_audio(
    client: YoutubeClient,
    video_id: str,
    url: str,
    out_dir: Path,
    *,
    max_bytes: int | None,
    min_free_gb: float,
) -> Path:
    """The audio of one video fetched on its own (resumable, same caps and politeness as video downloads)."""
    settings = DownloadSettings(
        out_dir / "fetched", min_free_gb=min_free_gb, max_bytes=max_bytes, format=AUDIO_FORMAT
    )
    found = existing_download(settings.out_dir, video_id)
    return found if found is not None else client.video(video_id, url, settings)
