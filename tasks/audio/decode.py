"""Read a media file's audio stream with ffmpeg as mono float32 at a given rate (or say it has none)."""

from __future__ import annotations

import subprocess

import numpy as np

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


def decode_mono(path: str, sample_rate: int, timeout_s: float) -> np.ndarray:
    """The audio stream (AUDIO_ONLY) downmixed to mono at `sample_rate`, float32 in [-1, 1], sample 0 at
    time 0 of the video's clock. `-xerror` makes any audio decode error fatal (half-decoded audio would be silently
    wrong); messages from probing other streams (a damaged picture track) do not fail the audio."""
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-xerror", "-copyts", "-i", path,
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


def _tail(raw: bytes, n: int = 3) -> str:
    lines = [line.strip() for line in raw.decode(errors="replace").splitlines() if line.strip()]
    return " | ".join(lines[-n:])
