"""Demo step sounds: deterministic, one texture per step, the same step sounding alike across videos."""

from __future__ import annotations

import numpy as np

from tasks.demo import sounds
from tasks.demo.narration import Segment, Word
from tasks.demo.world import World


def _spectrum(wave: np.ndarray) -> np.ndarray:
    mag = np.abs(np.fft.rfft(wave[: sounds.SAMPLE_RATE]))
    bands = np.add.reduceat(mag, np.geomspace(1, mag.size - 1, 40).astype(int))
    return np.log(bands + 1e-6)


def test_texture_is_deterministic_and_differs_by_step() -> None:
    assert sounds.texture_for("Make tea", 0, 0) == sounds.texture_for("Make tea", 0, 0)
    textures = {sounds.texture_for("Make tea", k, 0) for k in range(12)}
    assert len(textures) == 12
    assert sounds.texture_for("Make tea", 0, 0) != sounds.texture_for("Make tea", 0, 1)


def test_noise_colours_have_their_slopes() -> None:
    rng = np.random.default_rng(0)
    freqs = np.fft.rfftfreq(16000, 1 / sounds.SAMPLE_RATE)
    slopes = {}
    for name, alpha in sounds.NOISE_COLOURS.items():
        power = np.abs(np.fft.rfft(sounds.coloured_noise(16000, alpha, rng))) ** 2
        keep = (freqs > 50) & (freqs < 5000)
        slopes[name] = np.polyfit(np.log(freqs[keep]), np.log(power[keep]), 1)[0]
    assert abs(slopes["white"]) < 0.2 and abs(slopes["pink"] + 1) < 0.2 and abs(slopes["brown"] + 2) < 0.2


def test_same_step_sounds_alike_across_videos_other_steps_differ() -> None:
    segs = (Segment(0, 0, 2000, (Word("a", 100),)), Segment(1, 2000, 4000, (Word("b", 2100),)))
    one = sounds.video_wave(segs, "Make tea", 220, 4000, 0, video_seed=1)
    two = sounds.video_wave(segs, "Make tea", 330, 4000, 0, video_seed=2)
    assert np.array_equal(one, sounds.video_wave(segs, "Make tea", 220, 4000, 0, video_seed=1))
    assert one.shape == (4 * sounds.SAMPLE_RATE,) and np.abs(one).max() <= 1.0
    # Step 0 of one video vs step 0 of the other, and vs step 1: compare their spectra past the word.
    a0, b0 = _spectrum(one[4000:20000]), _spectrum(two[4000:20000])
    b1 = _spectrum(two[36000:52000])
    assert np.corrcoef(a0, b0)[0, 1] > np.corrcoef(a0, b1)[0, 1]


def test_demo_world_steps_have_distinct_textures(demo_world: World) -> None:
    steps = {(v.task, s) for v in demo_world.usable for s in v.steps}
    textures = {sounds.texture_for(t, s, demo_world.seed) for t, s in steps}
    assert len(textures) == len(steps)
