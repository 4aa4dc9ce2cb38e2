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


def peak_dbfs(wave: np.ndarray) -> float:
    peak = float(np.abs(wave).max()) if wave.size else 0.0
    return 20.0 * np.log10(max(peak, 1e-10))


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
) -> AudioResult:
    """Decode, log-mel, encode; never raises for a bad file (the status says what happened)."""
    try:
        wave = decode_mono(path, params.sample_rate, timeout_s)
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
    quiet = peak_dbfs(wave) < silence_dbfs
    error = f"peak {peak_dbfs(wave):.0f} dBFS < {silence_dbfs:.0f}" if quiet else None
    return AudioResult(
        video_id, SILENT if quiet else "ok", error, starts, ends, vectors, wave.size / params.sample_rate
    )
