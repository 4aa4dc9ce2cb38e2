"""FAC vs the shared-space ablation vs the audio-shuffled control, over seeds, on a data root's clips."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from storage.layout import DataRoot
from tasks.audio.fac_checkpoint import save_fac
from tasks.audio.fac_data import load_root, split_heldout
from tasks.audio.fac_train import FACTrainConfig, MMData, TrainedFAC, evaluate_fac, train_fac

VARIANTS = (("fac", "fac", False), ("shared", "shared", False), ("fac, audio shuffled", "fac", True))
SHOWN = ("v2a_R@1", "v2a_R@5", "a2v_R@5", "a2t_R@1", "a2t_R@5")
Keep = Callable[[TrainedFAC, FACTrainConfig], None]


@dataclass
class AudioComparison:
    """Each variant's held-out metrics per seed, the split's sizes and where the FAC checkpoint went."""

    runs: dict[str, list[dict[str, float]]]
    train_clips: int
    train_with_audio: int
    checkpoint: str

    def mean(self, variant: str, metric: str) -> float:
        return float(np.mean([r[metric] for r in self.runs[variant]]))

    def std(self, variant: str, metric: str) -> float:
        return float(np.std([r[metric] for r in self.runs[variant]]))

    @property
    def first(self) -> dict[str, float]:
        return next(iter(self.runs.values()))[0]


def variant_runs(
    train: MMData, heldout: MMData, base: FACTrainConfig, seeds: Sequence[int], keep: Keep | None = None
) -> dict[str, list[dict[str, float]]]:
    """Held-out metrics of every variant for every seed; `keep(trained, cfg)` gets FAC's first-seed model."""
    out: dict[str, list[dict[str, float]]] = {}
    for name, graph, shuffle in VARIANTS:
        out[name] = []
        for s in seeds:
            cfg = replace(base, graph=graph, shuffle_audio=shuffle, seed=s)  # type: ignore[arg-type]
            trained = train_fac(train, cfg)
            if keep is not None and name == "fac" and not out[name]:
                keep(trained, cfg)
            out[name].append(evaluate_fac(trained, heldout))
    return out


def compare_on_root(
    root: DataRoot, base: FACTrainConfig, seeds: Sequence[int], heldout_fraction: float
) -> AudioComparison:
    """Every variant on the root's own split; FAC's first-seed model is saved as the root's checkpoint."""
    data, vids = load_root(root)
    train, heldout = split_heldout(data, vids, heldout_fraction)
    if not heldout.has_audio.any() or not train.has_audio.any():
        raise ValueError(
            f"{root.url}: no clips with audio on one side of the split: run `howto audio run` first"
        )
    saved: list[str] = []
    runs = variant_runs(
        train, heldout, base, seeds, keep=lambda t, c: saved.append(save_fac(root, t, c, heldout_fraction))
    )
    return AudioComparison(runs, len(train), int(train.has_audio.sum()), saved[0])


def compare_root(root: DataRoot, base: FACTrainConfig, seeds: int, heldout_fraction: float) -> list[str]:
    """The comparison on a data root, as printable lines."""
    result = compare_on_root(root, base, range(seeds), heldout_fraction)
    first = result.first
    lines = [
        f"FAC on {root.url}: {result.train_clips} training clips ({result.train_with_audio} with audio), "
        f"{int(first['clips'])} held-out clips with audio, {int(first['a2t_candidates'])} distinct captions; "
        f"mean of {seeds} seeds",
        f"{'variant':<22}" + "".join(f"{k:>10}" for k in SHOWN),
    ]
    for name in result.runs:
        lines.append(f"{name:<22}" + "".join(f"{result.mean(name, k):>10.3f}" for k in SHOWN))
    lines.append(chance_line(first))
    lines.append(f"FAC checkpoint (first seed): {result.checkpoint}")
    return lines


def chance_line(first: dict[str, float]) -> str:
    return (
        f"chance: v2a R@5 {first['v2a_chance_R@5']:.3f}, a2t R@5 {first['a2t_chance_R@5']:.3f} "
        "(a2t is zero-shot: audio never meets text in training)"
    )
