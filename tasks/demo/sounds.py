"""Step sounds: one deterministic sound texture per step (noise colour, tone pattern, rhythm) mixed under
a narration stand-in, so a demo video's audio agrees with what it shows and says."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from tasks.demo.narration import Segment

SAMPLE_RATE = 16_000  # what the audio stage decodes to: nothing above 8 kHz is needed
NOISE_COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}  # spectral slope: power ~ 1 / f**alpha
PATTERNS = ("steady", "beeps", "chirp", "two_note")
NARRATION_LEVEL = 0.12  # the voice stand-in sits on top...
TEXTURE_LEVEL = 0.08  # ...with the step's texture under it
INTRO_LEVEL = 0.02  # room hum before the first step


@dataclass(frozen=True)
class Texture:
    """How one step sounds in every video of its task (before per-video jitter)."""

    noise: str  # key of NOISE_COLOURS
    tone_hz: float
    pattern: str  # one of PATTERNS
    rhythm_hz: float  # amplitude-modulation rate of the whole texture
    noise_mix: float  # share of noise vs tone, 0..1


def texture_for(task: str, step: int, seed: int) -> Texture:
    """The step's texture, drawn from a hash of (seed, task, step): stable across runs and machines."""
    digest = hashlib.sha256(f"{seed}:{task}:{step}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    return Texture(
        noise=str(rng.choice(list(NOISE_COLOURS))),
        tone_hz=float(np.exp(rng.uniform(np.log(180.0), np.log(3200.0)))),
        pattern=str(rng.choice(PATTERNS)),
        rhythm_hz=float(rng.choice((0.0, 1.5, 3.0, 6.0))),
        noise_mix=float(rng.uniform(0.25, 0.75)),
    )


def coloured_noise(n: int, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise whose power falls as 1/f**alpha (white 0, pink 1, brown 2), shaped in the spectrum."""
    if n == 0:
        return np.zeros(0, np.float32)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    freqs[0] = freqs[1] if n > 1 else 1.0
    shaped = np.fft.irfft(spectrum / freqs ** (alpha / 2.0), n)
    return (shaped / (np.sqrt(np.mean(shaped**2)) + 1e-12)).astype(np.float32)


def _tone(tex: Texture, t: np.ndarray, pitch: float) -> np.ndarray:
    f = tex.tone_hz * pitch
    if tex.pattern == "steady":
        return np.sin(2 * np.pi * f * t)
    if tex.pattern == "beeps":  # 8 Hz on/off gating at 50% duty
        return np.sin(2 * np.pi * f * t) * (np.mod(t * 8.0, 1.0) < 0.5)
    if tex.pattern == "chirp":  # a rising sweep to 1.5x, restarting every 0.5 s
        frac = np.mod(t, 0.5) / 0.5
        return np.sin(2 * np.pi * f * (t + 0.25 * frac * np.mod(t, 0.5)))
    # two_note: alternate a fifth apart every 0.25 s
    high = np.mod(t * 4.0, 2.0) >= 1.0
    return np.sin(2 * np.pi * f * np.where(high, 1.5, 1.0) * t)


def texture_wave(tex: Texture, n: int, t0_s: float, rng: np.random.Generator) -> np.ndarray:
    """n samples of a texture starting at t0_s, with per-video jitter (pitch +-3%, level +-20%)."""
    t = t0_s + np.arange(n) / SAMPLE_RATE
    pitch = rng.uniform(0.97, 1.03)
    level = rng.uniform(0.8, 1.2)
    noise = coloured_noise(n, NOISE_COLOURS[tex.noise], rng)
    wave = tex.noise_mix * noise + (1.0 - tex.noise_mix) * _tone(tex, t, pitch)
    if tex.rhythm_hz:
        wave = wave * (0.55 + 0.45 * np.sin(2 * np.pi * tex.rhythm_hz * t + rng.uniform(0, 2 * np.pi)))
    return (level * wave).astype(np.float32)


def narration_wave(segments: tuple[Segment, ...], tone_hz: int, n: int) -> np.ndarray:
    """The narrator stand-in: the video's voice tone, one short syllable-like burst per spoken word."""
    out = np.zeros(n, np.float32)
    burst = int(0.18 * SAMPLE_RATE)
    envelope = np.sin(np.linspace(0.0, np.pi, burst)).astype(np.float32)
    carrier = np.sin(2 * np.pi * tone_hz * np.arange(burst) / SAMPLE_RATE).astype(np.float32)
    for seg in segments:
        for word in seg.words:
            start = word.start_ms * SAMPLE_RATE // 1000
            piece = (envelope * carrier)[: max(0, n - start)]
            out[start : start + len(piece)] += piece
    return out


def video_wave(
    segments: tuple[Segment, ...], task: str, tone_hz: int, duration_ms: int, seed: int, video_seed: int
) -> np.ndarray:
    """A whole video's mono track in [-1, 1]: each step's texture over its span, narration on top."""
    n = duration_ms * SAMPLE_RATE // 1000
    rng = np.random.default_rng(video_seed)
    bed = np.zeros(n, np.float32)
    for seg in segments:
        a, b = seg.start_ms * SAMPLE_RATE // 1000, min(n, seg.end_ms * SAMPLE_RATE // 1000)
        if b <= a:
            continue
        if seg.step is None:
            bed[a:b] = INTRO_LEVEL * coloured_noise(b - a, NOISE_COLOURS["brown"], rng)
        else:
            tex = texture_for(task, seg.step, seed)
            bed[a:b] = TEXTURE_LEVEL * texture_wave(tex, b - a, seg.start_ms / 1000, rng)
    wave = bed + NARRATION_LEVEL * narration_wave(segments, tone_hz, n)
    return np.clip(wave, -1.0, 1.0)


def pcm16(wave: np.ndarray) -> bytes:
    """Little-endian 16-bit PCM of a [-1, 1] float wave (what ffmpeg's s16le input reads)."""
    return (np.clip(wave, -1.0, 1.0) * 32767).astype("<i2").tobytes()
