"""Read a media file's audio stream with ffmpeg as mono float32 at a given rate (or say it has none)."""

from __future__ import annotations

import json
import math
import subprocess

import numpy as np

from tasks.features.decode import row_clock_origin_s
from tasks.interrupts import check_child

# Per-video outcomes besides ok, in the order they are checked (a row's status).
NO_AUDIO = "no_audio"  # the file has no audio stream: a fact about the video, not a failure
CORRUPT = "corrupt_audio"  # ffmpeg cannot decode the stream (status failed, error starts with this)
SILENT = "silent"  # decoded, but quieter than the threshold throughout: rows kept, flagged


# A track that starts after the video (its first time stamp > 0: an edit list, a late muxed stream) must
# keep that offset, or every row lands early against the frame rows it is joined with. Raw PCM output has
# no time stamps, so: keep the file's own (-copyts: a kept .m4a/.mka track's are already on its video's clock,
# as keep_track's copy shifted them; yt-dlp's mp4/webm/mkv start at 0) and let aresample pad the start
# with silence up to 0 (or trim samples before 0), and fill any gap in the time stamps the same way.
ALIGN_TO_ZERO = "aresample=async=1:first_pts=0"
# ...counted, as a video file's frame rows are, from its container's start (row_clock_origin_s: a file whose
# streams all start at 1.4 s, as an MPEG-TS or a cut stream does, has its row 0 there; a negative start,
# Opus's pre-roll, counts as 0). -copyts alone kept the 1.4 s: read from such a file (a kept video) every
# audio row sat 1.4 s late against the frame rows, and against its own kept track (keep_track's copy counts
# from the container's start already, so an audio-only file counts from 0).
# Which audio stream, of a file with several (language tracks): ffmpeg's own pick (no -map), i.e. the one
# flagged default (what a player starts with), else the one with the most channels, else the first;
# `-map 0:a:0` took the first whatever its flags. Video, subtitles and data are switched off.
AUDIO_ONLY = ["-vn", "-sn", "-dn"]


class AudioDecodeError(RuntimeError):
    """ffmpeg/ffprobe could not read the audio: permanent for this file."""


class NoAudioStream(AudioDecodeError):
    """The file has no audio stream at all."""


class AudioDecodeTimeout(RuntimeError):
    """ffmpeg ran past its budget: a retryable row error."""


def decode_mono(path: str, sample_rate: int, timeout_s: float, *, kept_track: bool = False) -> np.ndarray:
    """The audio stream (AUDIO_ONLY) downmixed to mono at `sample_rate`, float32 in [-1, 1], sample 0 at
    time 0 of the video's clock. `-xerror` makes any audio decode error fatal (half-decoded audio would be silently
    wrong); messages from probing other streams (a damaged picture track) do not fail the audio.
    `kept_track`: the file is keep_track's copy, audio alone and counted from its video's start already, so
    the ffprobe for the picture's clock (which could only say 0) is not run: one process a video, not two."""
    origin = 0.0 if kept_track else picture_clock_start_s(path, timeout_s)
    shift = ["-itsoffset", f"{-origin:.6f}"] if origin > 0 else []
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-xerror", "-copyts", *shift, "-i", path,
           *AUDIO_ONLY, "-af", ALIGN_TO_ZERO, "-ac", "1", "-ar", str(sample_rate),
           "-f", "f32le", "pipe:1"]  # fmt: skip
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AudioDecodeTimeout(f"ffmpeg timed out after {timeout_s:.0f} s") from exc
    if done.returncode != 0:
        check_child(done.returncode, "ffmpeg")  # a stop signal, not the file: nothing to record
        message = _tail(done.stderr) or f"ffmpeg exited with {done.returncode}"
        # One process instead of an ffprobe first: with no audio stream, no output stream is left.
        if "does not contain any stream" in message:
            raise NoAudioStream(message)
        raise AudioDecodeError(message)
    wave = np.frombuffer(done.stdout, np.float32)
    if wave.size == 0:
        raise AudioDecodeError("the audio stream decoded to no samples")
    return wave


def picture_clock_start_s(path: str, timeout_s: float) -> float:
    """Where the frame rows of this file start on its time stamps (the container's start, ffprobe's
    earliest stream's first time stamp, through row_clock_origin_s) when it has a picture; 0.0 for an
    audio-only file (a kept track, whose copy already counts from its video's start; a fetched track) and
    where ffprobe says nothing (a file it cannot read: the decode then says what is wrong with it)."""
    cmd = ["ffprobe", "-v", "error", "-show_entries",
           "format=start_time:stream=codec_type:stream_disposition=attached_pic", "-of", "json", "-i", path]  # fmt: skip
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AudioDecodeTimeout(f"ffprobe timed out after {timeout_s:.0f} s") from exc
    check_child(done.returncode, "ffprobe")  # a stop signal, not the file: nothing to record
    try:
        data = json.loads(done.stdout or b"{}") if done.returncode == 0 else {}
        start = float(data.get("format", {}).get("start_time", 0.0))
    except (ValueError, TypeError, AttributeError):  # "N/A", or not what ffprobe writes
        return 0.0
    pictures = [
        s for s in data.get("streams") or []
        if isinstance(s, dict) and s.get("codec_type") == "video"
        and not (s.get("disposition") or {}).get("attached_pic")  # cover art is no picture on a clock
    ]  # fmt: skip
    return row_clock_origin_s(start) if pictures and math.isfinite(start) else 0.0


def _tail(raw: bytes, n: int = 3) -> str:
    lines = [line.strip() for line in raw.decode(errors="replace").splitlines() if line.strip()]
    return " | ".join(lines[-n:])
