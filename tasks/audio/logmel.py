"""Log-mel spectrograms in numpy (pure): PANNs' 16 kHz front end, so real Cnn14_16k weights see what they
were trained on; per-second chunks for the encoders."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LogMelParams:
    """16 kHz mono; 32 ms Hann window (512 samples, periodic) = n_fft; 10 ms hop (160 samples), frames
    centred with reflect padding; power spectrum -> 64 Slaney mel bins over 50-8000 Hz (area-normalised,
    librosa's default); 10*log10(max(mel, 1e-10)) dB. These are PANNs' Cnn14_16k settings."""

    sample_rate: int = 16_000
    n_fft: int = 512
    hop: int = 160
    n_mels: int = 64
    fmin: float = 50.0
    fmax: float = 8000.0
    amin: float = 1e-10

    @property
    def frames_per_s(self) -> int:
        return self.sample_rate // self.hop


DEFAULT = LogMelParams()


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear (3 per 200 Hz) below 1 kHz, logarithmic (27 per factor 6.4) above."""
    hz = np.asarray(hz, np.float64)
    linear = hz * 3.0 / 200.0
    logstep = np.log(6.4) / 27.0
    return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-12) / 1000.0) / logstep, linear)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, np.float64)
    logstep = np.log(6.4) / 27.0
    return np.where(mel >= 15.0, 1000.0 * np.exp(logstep * (mel - 15.0)), mel * 200.0 / 3.0)


def mel_filterbank(p: LogMelParams = DEFAULT) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters, each scaled by 2 / its width in Hz (equal area)."""
    fft_hz = np.linspace(0.0, p.sample_rate / 2.0, p.n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(np.array(p.fmin)), hz_to_mel(np.array(p.fmax)), p.n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (fft_hz[None, :] - lower) / (centre - lower)
    falling = (upper - fft_hz[None, :]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return (weights * (2.0 / (upper - lower))).astype(np.float32)


def hann(n: int) -> np.ndarray:
    """The periodic Hann window (scipy's fftbins=True), what STFT front ends use."""
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(np.float32)


def log_mel(wave: np.ndarray, p: LogMelParams = DEFAULT) -> np.ndarray:
    """(frames, n_mels) float32 dB of a mono float wave; frame j is centred on sample j * hop."""
    wave = np.asarray(wave, np.float32)
    if wave.size == 0:
        return np.zeros((0, p.n_mels), np.float32)
    pad = p.n_fft // 2
    # Reflect needs more samples than the pad; a shorter clip is zero-padded instead.
    padded = np.pad(wave, pad, mode="reflect") if wave.size > pad else np.pad(wave, pad)
    n_frames = 1 + (padded.size - p.n_fft) // p.hop
    frames = np.lib.stride_tricks.sliding_window_view(padded, p.n_fft)[:: p.hop][:n_frames]
    power = np.abs(np.fft.rfft(frames * hann(p.n_fft), axis=1)) ** 2
    mel = power.astype(np.float32) @ mel_filterbank(p).T
    return (10.0 * np.log10(np.maximum(mel, p.amin))).astype(np.float32)


def per_second(spec: np.ndarray, duration_ms: int, p: LogMelParams = DEFAULT) -> np.ndarray:
    """(seconds, frames_per_s, n_mels): second k holds frames k*fps .. (k+1)*fps; a last partial second
    is tiled from its own frames (never padded with fake silence) so every chunk has the same shape."""
    fps = p.frames_per_s
    n_rows = max(1, -(-duration_ms // 1000))
    chunks = []
    for k in range(n_rows):
        chunk = spec[k * fps : (k + 1) * fps]
        if len(chunk) == 0:
            chunk = spec[-1:] if len(spec) else np.full((1, p.n_mels), 10 * np.log10(p.amin), np.float32)
        if len(chunk) < fps:
            chunk = np.resize(chunk, (fps, p.n_mels))  # repeats rows in order
        chunks.append(chunk)
    return np.stack(chunks).astype(np.float32)


def row_spans_ms(duration_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """(t_start_ms, t_end_ms) of each per-second row; the last ends at the track's end."""
    n_rows = max(1, -(-duration_ms // 1000))
    starts = np.arange(n_rows, dtype=np.int64) * 1000
    return starts, np.minimum(starts + 1000, max(duration_ms, 1)).astype(np.int64)
