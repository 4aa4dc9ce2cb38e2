"""FAC learns on small synthetic data (3 seeds): video<->audio beats the audio-shuffled control, and
zero-shot audio->text (never trained) beats chance; the shared ablation is reported beside it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tasks.audio.fac_data import synthetic
from tasks.audio.fac_train import FACTrainConfig, evaluate_fac, train_fac

SMALL = {"epochs": 10, "d_fine": 32, "d_coarse": 16, "batch": 50}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)  # tiny matrices: more threads only contend


def _run(graph: str, shuffle: bool, seed: int) -> dict[str, float]:
    data = synthetic(n_videos=40, clips_per_video=10, n_steps=24, seed=seed)
    train, heldout = data.take(np.arange(300)), data.take(np.arange(300, 400))
    cfg = FACTrainConfig(graph=graph, shuffle_audio=shuffle, seed=seed, **SMALL)  # type: ignore[arg-type]
    return evaluate_fac(train_fac(train, cfg), heldout)


def test_fac_learns_video_audio_and_zero_shot_audio_text() -> None:
    runs = {
        name: [_run(graph, shuffle, seed) for seed in range(3)]
        for name, graph, shuffle in (
            ("fac", "fac", False),
            ("shuffled", "fac", True),
            ("shared", "shared", False),
        )
    }
    mean = {name: {k: float(np.mean([r[k] for r in rs])) for k in rs[0]} for name, rs in runs.items()}
    for name, m in mean.items():
        print(name, {k: round(v, 3) for k, v in m.items()})
    fac, control = mean["fac"], mean["shuffled"]
    assert fac["v2a_R@5"] >= control["v2a_R@5"] + 0.3
    assert fac["a2v_R@5"] >= control["a2v_R@5"] + 0.3
    assert fac["a2t_R@5"] >= fac["a2t_chance_R@5"] + 0.2
    assert mean["shared"]["v2a_R@5"] >= control["v2a_R@5"] + 0.3  # the ablation trains too
