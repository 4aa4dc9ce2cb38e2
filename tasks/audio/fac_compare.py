"""FAC vs the shared-space ablation vs the audio-shuffled control, over seeds, on a data root's clips."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from storage.layout import DataRoot
from tasks.audio.fac_data import load_root, split_heldout
from tasks.audio.fac_train import FACTrainConfig, MMData, evaluate_fac, train_fac

VARIANTS = (("fac", "fac", False), ("shared", "shared", False), ("fac, audio shuffled", "fac", True))
SHOWN = ("v2a_R@1", "v2a_R@5", "a2v_R@5", "a2t_R@1", "a2t_R@5")


def compare(train: MMData, heldout: MMData, base: FACTrainConfig, seeds: int) -> dict[str, dict[str, float]]:
    """Mean held-out metrics per variant over `seeds` seeds."""
    out: dict[str, dict[str, float]] = {}
    for name, graph, shuffle in VARIANTS:
        runs = [
            evaluate_fac(train_fac(train, replace(base, graph=graph, shuffle_audio=shuffle, seed=s)), heldout)
            for s in range(seeds)
        ]  # type: ignore[arg-type]
        out[name] = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    return out


def compare_root(root: DataRoot, base: FACTrainConfig, seeds: int, heldout_fraction: float) -> list[str]:
    """The comparison on a data root, as printable lines."""
    data, vids = load_root(root)
    train, heldout = split_heldout(data, vids, heldout_fraction)
    if not heldout.has_audio.any() or not train.has_audio.any():
        raise ValueError(
            f"{root.url}: no clips with audio on one side of the split: run `howto audio run` first"
        )
    means = compare(train, heldout, base, seeds)
    first = next(iter(means.values()))
    lines = [
        f"FAC on {root.url}: {len(train)} training clips ({int(train.has_audio.sum())} with audio), "
        f"{int(first['clips'])} held-out clips with audio, {int(first['a2t_candidates'])} distinct captions; "
        f"mean of {seeds} seeds",
        f"{'variant':<22}" + "".join(f"{k:>10}" for k in SHOWN),
    ]
    for name, m in means.items():
        lines.append(f"{name:<22}" + "".join(f"{m[k]:>10.3f}" for k in SHOWN))
    lines.append(
        f"chance: v2a R@5 {first['v2a_chance_R@5']:.3f}, a2t R@5 {first['a2t_chance_R@5']:.3f} "
        "(a2t is zero-shot: audio never meets text in training)"
    )
    return lines
