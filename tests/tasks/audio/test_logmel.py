"""Log-mel front end: the documented parameters, Slaney mel filters, frames and per-second chunks."""

from __future__ import annotations

import numpy as np

from tasks.audio.logmel import (
    DEFAULT,
    hann,
    hz_to_mel,
    log_mel,
    mel_filterbank,
    mel_to_hz,
    per_second,
    row_spans_ms,
)


def test_documented_parameters() -> None:
    p = DEFAULT
    assert (p.sample_rate, p.n_fft, p.hop, p.n_mels, p.fmin, p.fmax) == (16_000, 512, 160, 64, 50.0, 8000.0)
    assert p.frames_per_s == 100  # 10 ms hop; 32 ms window


def test_slaney_mel_scale() -> None:
    assert hz_to_mel(np.array(1000.0)) == 15.0 and hz_to_mel(np.array(200.0)) == 3.0
    assert np.isclose(hz_to_mel(np.array(6400.0)), 42.0)  # 27 mels per factor 6.4 above 1 kHz
    hz = np.array([60.0, 700.0, 1000.0, 3000.0, 7900.0])
    assert np.allclose(mel_to_hz(hz_to_mel(hz)), hz)


def test_filters_are_equal_area_triangles() -> None:
    fb = mel_filterbank()
    assert fb.shape == (64, 257) and (fb >= 0).all()
    df = 16_000 / 512
    areas = fb.sum(axis=1) * df
    assert np.allclose(areas[20:], 1.0, atol=0.05)  # wide filters integrate to 1 (2 / width x width / 2)
    assert (np.diff(fb.argmax(axis=1)) >= 0).all()  # centres rise with the bin index


def test_a_tone_lands_in_its_bin_and_matches_a_direct_dft() -> None:
    sr = 16_000
    t = np.arange(sr) / sr
    wave = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    spec = log_mel(wave)
    assert spec.shape == (1 + sr // 160, 64)
    centres = mel_to_hz(np.linspace(hz_to_mel(np.array(50.0)), hz_to_mel(np.array(8000.0)), 66))[1:-1]
    assert abs(int(spec[50].argmax()) - int(np.abs(centres - 1000).argmin())) <= 1
    # Frame 50 re-typed: samples 50*160-256 .. +512 (no padding needed there), periodic Hann, a plain DFT.
    frame = wave[50 * 160 - 256 : 50 * 160 + 256] * (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(512) / 512))
    k, n = np.arange(257)[:, None], np.arange(512)[None, :]
    power = (frame @ np.cos(2 * np.pi * k * n / 512).T) ** 2 + (
        frame @ np.sin(2 * np.pi * k * n / 512).T
    ) ** 2
    expected = 10 * np.log10(np.maximum(mel_filterbank() @ power, 1e-10))
    assert np.allclose(spec[50], expected, atol=1e-2)
    assert np.allclose(hann(4), [0.0, 0.5, 1.0, 0.5])


def test_silence_sits_at_the_floor() -> None:
    assert np.allclose(log_mel(np.zeros(1600, np.float32)), -100.0)


def test_per_second_chunks_and_spans() -> None:
    spec = np.arange(251 * 64, dtype=np.float32).reshape(251, 64)  # 2.5 s of frames
    chunks = per_second(spec, 2500)
    assert chunks.shape == (3, 100, 64)
    assert np.array_equal(chunks[1], spec[100:200])
    assert np.array_equal(chunks[2][:51], spec[200:251]) and np.array_equal(chunks[2][51:], spec[200:249])
    starts, ends = row_spans_ms(2500)
    assert starts.tolist() == [0, 1000, 2000] and ends.tolist() == [1000, 2000, 2500]
