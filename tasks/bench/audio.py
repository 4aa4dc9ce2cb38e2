"""`howto bench audio`: seconds of audio per wall-second, our path vs a naive one, on a generated track.

Ours: ffmpeg decodes, downmixes and resamples to 16 kHz mono in one pass straight into memory; the
log-mel is one vectorised STFT; the encoder sees `batch` seconds at a time. Naive: decode to a 44.1 kHz
stereo WAV on disk, read it back, downmix and resample in numpy, one FFT and one mel product per frame
in a Python loop, one second per encoder call.
"""

from __future__ import annotations

import subprocess
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.audio_encoder import l2_rows
from tasks.audio.extract import extract_audio
from tasks.audio.logmel import DEFAULT, hann, mel_filterbank, per_second


def make_track(path: Path, seconds: int) -> None:
    """A YouTube-like track: 44.1 kHz stereo AAC at 128 kb/s (pink noise under a beeping tone)."""
    src = f"anoisesrc=color=pink:sample_rate=44100:amplitude=0.1:duration={seconds}"
    tone = f"sine=frequency=660:sample_rate=44100:beep_factor=4:duration={seconds}"
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", src, "-f", "lavfi", "-i", tone,
           "-filter_complex", "[0][1]amix=inputs=2,aformat=channel_layouts=stereo", "-c:a", "aac",
           "-b:a", "128k", str(path)]  # fmt: skip
    subprocess.run(cmd, check=True)


def naive_vectors(path: Path, tmp: Path, encoder: nn.Module) -> tuple[np.ndarray, float]:
    """The straightforward path; returns (vectors, seconds of audio)."""
    wav = tmp / "naive.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(path), str(wav)], check=True)
    with wave.open(str(wav)) as handle:
        rate, channels = handle.getframerate(), handle.getnchannels()
        raw = np.frombuffer(handle.readframes(handle.getnframes()), "<i2").astype(np.float32) / 32768
    mono = raw.reshape(-1, channels).mean(axis=1)
    n_out = int(len(mono) * DEFAULT.sample_rate / rate)
    resampled = np.interp(np.arange(n_out) * rate / DEFAULT.sample_rate, np.arange(len(mono)), mono)
    padded = np.pad(resampled, DEFAULT.n_fft // 2, mode="reflect")
    fb, window = mel_filterbank(), hann(DEFAULT.n_fft)
    frames = []
    for start in range(0, len(padded) - DEFAULT.n_fft + 1, DEFAULT.hop):
        power = np.abs(np.fft.rfft(padded[start : start + DEFAULT.n_fft] * window)) ** 2
        frames.append(10 * np.log10(np.maximum(fb @ power, DEFAULT.amin)))
    chunks = per_second(np.array(frames, np.float32), n_out * 1000 // DEFAULT.sample_rate)
    with torch.inference_mode():
        vectors = [l2_rows(encoder(torch.from_numpy(c[None]))).numpy() for c in chunks]
    return np.concatenate(vectors), n_out / DEFAULT.sample_rate


def run_audio_bench(
    tmp: Path, seconds: int, encoders: dict[str, nn.Module], log: Callable[[str], None] = print
) -> dict[str, float]:
    """Print one line per encoder and path; return {encoder/path: audio seconds per wall-second}."""
    track = tmp / "track.m4a"
    make_track(track, seconds)
    out: dict[str, float] = {}
    for name, encoder in encoders.items():
        started = time.perf_counter()
        ours = extract_audio("bench", str(track), encoder, silence_dbfs=-60.0, timeout_s=600.0)
        ours_s = time.perf_counter() - started
        started = time.perf_counter()
        naive, audio_s = naive_vectors(track, tmp, encoder)
        naive_s = time.perf_counter() - started
        agree = (
            float(np.mean(np.sum(ours.vectors * naive, axis=1)))
            if len(naive) == len(ours.vectors)
            else float("nan")
        )
        out[f"{name}/ours"], out[f"{name}/naive"] = ours.seconds / ours_s, audio_s / naive_s
        log(
            f"{name:<22} ours {out[f'{name}/ours']:8.1f} audio-s/s   naive {out[f'{name}/naive']:8.1f} audio-s/s   "
            f"speed-up x{out[f'{name}/ours'] / out[f'{name}/naive']:.1f}   mean cosine ours-vs-naive {agree:.3f}"
        )
    return out
