"""One media file -> per-second audio vectors, or the status that says why there are none."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from models.audio_encoder import l2_rows
from tasks.audio.decode import (
    CORRUPT,
    NO_AUDIO,
    SILENT,
    AudioDecodeError,
    AudioDecodeTimeout,
    NoAudioStream,
    decode_mono,
)
from tasks.audio.logmel import DEFAULT, LogMelParams, log_mel, per_second, row_spans_ms


@dataclass
class AudioResult:
    """A video's outcome: status ok/silent with rows, or no_audio/failed/error with an error text."""

    video_id: str
    status: str
    error: str | None = None
    t_start_ms: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    t_end_ms: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    seconds: float = 0.0  # audio decoded (for the bench and the stats)


# A track is silent when it reaches `silence_dbfs` for less than this in all (or, shorter than twice this, for
# less than half its length). Judged by its loudest sample alone, a silent track with one click (a bump of the
# camera, a cut's pop: tens of ms) was "ok". The mean level (ffmpeg's volumedetect mean_volume) is no better:
# it counts that click (-42 dB over 10 s, measured) and puts a quiet narration (peaks at -54 dBFS) at -63 dB.
MIN_SOUND_S = 0.5
FRAME_S = 0.01  # the loudness is read per 10 ms frame (the log-mel hop)


def _dbfs(amplitude: float) -> float:
    return 20.0 * np.log10(max(amplitude, 1e-10))


def peak_dbfs(wave: np.ndarray) -> float:
    return _dbfs(float(np.abs(wave).max()) if wave.size else 0.0)


def loud_seconds(wave: np.ndarray, sample_rate: int, threshold_dbfs: float) -> float:
    """How long `wave` reaches `threshold_dbfs`: the 10 ms frames whose loudest sample does, in seconds."""
    if not wave.size:
        return 0.0
    size = max(1, round(sample_rate * FRAME_S))
    frames = np.pad(wave, (0, -wave.size % size)).reshape(-1, size)  # a short last frame, padded with zeros
    peaks = np.maximum(frames.max(axis=1), -frames.min(axis=1))  # no |wave| copy of a long track
    return int((peaks >= 10.0 ** (threshold_dbfs / 20.0)).sum()) * size / sample_rate


def silence_reason(wave: np.ndarray, sample_rate: int, silence_dbfs: float) -> str | None:
    """Why the track counts as silent (the row's error text), or None when it has sound."""
    loud = loud_seconds(wave, sample_rate, silence_dbfs)
    if loud >= min(MIN_SOUND_S, wave.size / sample_rate / 2):
        return None
    return f"at or above {silence_dbfs:.0f} dBFS for {loud:.2f} s only (peak {peak_dbfs(wave):.0f} dBFS)"


def encode_chunks(encoder: nn.Module, chunks: np.ndarray, batch: int, device: str = "cpu") -> np.ndarray:
    """(seconds, dim) L2-normalised vectors of (seconds, frames, mel) chunks, `batch` seconds at a time."""
    outs = []
    with torch.inference_mode():
        for i in range(0, len(chunks), batch):
            x = torch.from_numpy(chunks[i : i + batch]).to(device)
            outs.append(l2_rows(encoder(x)).cpu().numpy())
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def extract_audio(
    video_id: str,
    path: str,
    encoder: nn.Module,
    *,
    silence_dbfs: float,
    timeout_s: float,
    batch: int = 64,
    device: str = "cpu",
    params: LogMelParams = DEFAULT,
    kept_track: bool = False,
) -> AudioResult:
    """Decode, log-mel, encode; never raises for a bad file (the status says what happened). `kept_track`:
    see decode_mono."""
    try:
        wave = decode_mono(path, params.sample_rate, timeout_s, kept_track=kept_track)
    except NoAudioStream:
        return AudioResult(video_id, NO_AUDIO, "no audio stream in the file")
    except AudioDecodeTimeout as exc:
        return AudioResult(video_id, "error", f"timeout: {exc}")
    except AudioDecodeError as exc:
        return AudioResult(video_id, "failed", f"{CORRUPT}: {exc}")
    duration_ms = wave.size * 1000 // params.sample_rate
    chunks = per_second(log_mel(wave, params), duration_ms, params)
    starts, ends = row_spans_ms(duration_ms)
    vectors = encode_chunks(encoder, chunks, batch, device)
    error = silence_reason(wave, params.sample_rate, silence_dbfs)
    return AudioResult(
        video_id, SILENT if error else "ok", error, starts, ends, vectors, wave.size / params.sample_rate
    )
