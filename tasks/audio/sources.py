"""Where a video's audio comes from: the track kept beside its features download, the kept video file,
or (neither there) an audio-only fetch through the one YouTube client, with its politeness and resume."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from storage.layout import DataRoot
from tasks.audio.decode import AUDIO_ONLY
from tasks.interrupts import cut_by_interrupt
from tasks.youtube.client import YoutubeClient
from tasks.youtube.video_download import AUDIO_FORMAT, DownloadSettings, existing_download

TRACK_EXT = ".mka"  # Matroska holds any audio codec (AAC, Opus, Vorbis) without re-encoding
NO_AUDIO_EXT = ".noaudio"  # the downloaded file had no audio stream
UNREADABLE_EXT = ".unreadable"  # ffmpeg could not even copy the stream; holds its message


def track_dir(root: DataRoot) -> Path:
    """Kept tracks live under the data root when it is local, else in a local temp folder."""
    if root.is_local:
        return Path(root.path("_work", "audio"))
    return Path(tempfile.gettempdir()) / "howto-audio"


def keep_track(video: Path, out_dir: Path, video_id: str) -> None:
    """Copy the audio stream (AUDIO_ONLY's pick) of a downloaded video beside the data (no re-encode: ~1/10
    of the file, tens of ms), or record that it has none; called before the features stage deletes the video."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if any((out_dir / f"{video_id}{ext}").exists() for ext in (TRACK_EXT, NO_AUDIO_EXT, UNREADABLE_EXT)):
        return
    target = out_dir / f"{video_id}{TRACK_EXT}"
    tmp = out_dir / f".{video_id}.{os.getpid()}.tmp{TRACK_EXT}"
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(video),
           *AUDIO_ONLY, "-c", "copy", str(tmp)]  # fmt: skip
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    except (subprocess.TimeoutExpired, OSError):
        # Never fail the features shard over audio: with nothing recorded, the audio stage fetches it.
        tmp.unlink(missing_ok=True)
        return
    message = done.stderr.decode(errors="replace").strip()
    if cut_by_interrupt(done.returncode):
        # A stop signal (Ctrl-C, SIGTERM), not the file: with nothing recorded, the audio stage fetches the track later.
        tmp.unlink(missing_ok=True)
        return
    if done.returncode == 0 and tmp.exists() and tmp.stat().st_size > 0:
        os.replace(tmp, target)
        return
    tmp.unlink(missing_ok=True)
    if done.returncode == 0 or "does not contain any stream" in message or "matches no streams" in message:
        (out_dir / f"{video_id}{NO_AUDIO_EXT}").write_text("")
    else:
        (out_dir / f"{video_id}{UNREADABLE_EXT}").write_text(message[-500:] or f"exit {done.returncode}")


def kept_outcome(out_dir: Path, video_id: str) -> tuple[str, Path | None, str | None]:
    """('track', path, None), ('no_audio', None, None), ('unreadable', None, message) or ('missing', ...)."""
    track = out_dir / f"{video_id}{TRACK_EXT}"
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
