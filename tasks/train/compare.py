"""`howto train compare`: the seed methods trained on one data root with the same seeds, split and
held-out evaluation, plus a shuffled-caption control; one table and one plot of the curves."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from storage.atomic import atomic_write_bytes
from storage.layout import DataRoot
from tasks.common import config_hash, shard_hash
from tasks.figures import figure_png, new_figure
from tasks.train.checkpoints import check_name, run_or_earlier
from tasks.train.config import DEFAULT_METHODS, TrainConfig, revised
from tasks.train.prepare import data_snapshot, earlier_pairs_hash
from tasks.train.run import train

if TYPE_CHECKING:
    from tasks.audio.fac_compare import AudioComparison

log = logging.getLogger(__name__)

# Each method's own settings; everything else (text side, d, lr, epochs, batch videos, split, seed)
# comes from the shared base config, so the rows differ only in how pairs are drawn and scored.
RECIPES: dict[str, dict[str, Any]] = {
    "max_margin": {"objective": "pairs", "loss": "max_margin"},
    "infonce": {"objective": "pairs", "loss": "infonce", "temperature": 0.07},
    "milnce_inbatch": {"objective": "pairs", "loss": "milnce_inbatch", "temperature": 0.07},
    "howto100m": {"objective": "howto100m", "clips_per_video": 64, "min_span_s": 5.0},
    "milnce": {"objective": "milnce", "bag_size": 4, "min_span_s": 5.0, "clips_per_video": 16, "temperature": 0.07},
    "videoclip": {"objective": "videoclip", "clips_per_video": 16, "retrieval_batches": True, "temperature": 0.07},
    "videoclip_random": {"objective": "videoclip", "clips_per_video": 16, "temperature": 0.07},
    "videoclip_transformer": {
        "objective": "videoclip", "clips_per_video": 16, "video_encoder": "transformer", "temperature": 0.07,
    },
    "tvts": {"objective": "tvts", "temperature": 0.05, "sort_weight": 2.0},
}  # fmt: skip
CONTROL = "shuffled"
METRICS = ("R@1", "R@5", "R@10", "MedR")
_ROW_KEYS = {"R@1": "r_at_1", "R@5": "r_at_5", "R@10": "r_at_10", "MedR": "median_rank"}


def method_config(
    base: TrainConfig, method: str, seed: int, shuffled: bool = False, data_hash: str | None = None
) -> TrainConfig:
    """The base config with a method's recipe, a seed and a stable run id (reruns reuse the runs).

    `data_hash` (the clip_pairs snapshot's) goes into the id as it does into a default run's: pairs rebuilt
    from new clips or features train new runs, never read back the rows of runs trained on the old ones."""
    if method not in RECIPES:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(RECIPES)}")
    fields = {**base.model_dump(), **RECIPES[method], "seed": seed, "shuffle_pairs": shuffled, "run_id": None}
    cfg = TrainConfig(**fields)
    tag = f"{CONTROL}-{method}" if shuffled else method
    digest = revised(config_hash(cfg, {"run_id"}), cfg.objective, cfg.text)
    if data_hash:
        digest = shard_hash(digest, data_hash)
    return cfg.model_copy(update={"run_id": f"compare-{tag}-s{seed}-{digest[:8]}"})


def _method_run(
    root: DataRoot, base: TrainConfig, method: str, seed: int, shuffled: bool, snapshot: dict[str, Any]
) -> TrainConfig:
    """`method_config` for the root's clip_pairs; a run begun when empty shards still counted in the data
    hash keeps its id, so it is read back (or resumed), not trained again (as a default run's, run.py)."""
    cfg = method_config(base, method, seed, shuffled, snapshot["hash"])
    if not snapshot.get("empty_shards"):
        return cfg
    earlier = method_config(base, method, seed, shuffled, earlier_pairs_hash(snapshot["per_shard"]))
    assert cfg.run_id is not None and earlier.run_id is not None
    return cfg.model_copy(update={"run_id": run_or_earlier(root, cfg.run_id, earlier.run_id)})


@dataclass
class MethodResult:
    """One row of the table: a method's runs over the seeds."""

    name: str
    runs: list[dict[str, Any]] = field(default_factory=list)  # train() summaries
    histories: list[list[dict[str, Any]]] = field(default_factory=list)

    def mean(self, metric: str) -> float:
        return float(np.mean([r["metrics"][metric] for r in self.runs]))

    def std(self, metric: str) -> float:
        return float(np.std([r["metrics"][metric] for r in self.runs]))


def _history(root: DataRoot, run_id: str) -> list[dict[str, Any]]:
    from tasks.train.report import read_card

    card = read_card(root, run_id) or {}
    return list(card.get("history") or [])


def compare(
    root: DataRoot,
    base: TrainConfig,
    methods: Sequence[str] = DEFAULT_METHODS,
    seeds: Sequence[int] = (0, 1, 2),
    control: str = "infonce",
    progress: Callable[[str], None] = print,
) -> list[MethodResult]:
    """Train every method (and the control) for every seed; a finished run is read back, not redone."""
    plan = [(m, False) for m in methods] + ([(control, True)] if control else [])
    snapshot = data_snapshot(root)
    results = []
    for method, shuffled in plan:
        result = MethodResult(f"{CONTROL} ({method})" if shuffled else method)
        for seed in seeds:
            cfg = _method_run(root, base, method, seed, shuffled, snapshot)
            summary = train(cfg, root)
            result.runs.append(summary)
            result.histories.append(_history(root, summary["run_id"]))
            m = summary["metrics"]
            progress(
                f"{result.name:<24} seed {seed}: R@1 {m['R@1']:.3f} R@5 {m['R@5']:.3f} R@10 {m['R@10']:.3f} "
                f"MedR {m['MedR']:.1f}{' (cached)' if summary.get('cached') else ''}"
            )
        results.append(result)
    return results


def best_method(results: Sequence[MethodResult], metric: str = "R@5") -> MethodResult:
    """The method with the highest mean held-out metric (controls excluded)."""
    return max((r for r in results if not r.name.startswith(CONTROL)), key=lambda r: r.mean(metric))


def table_lines(results: Sequence[MethodResult], seeds: Sequence[int], candidates: int) -> list[str]:
    """A Markdown table: mean +- sd over seeds of each held-out metric, best R@5 marked."""
    best = best_method(results).name
    head = "| method | " + " | ".join(METRICS) + " |"
    lines = [head, "|" + "---|" * (len(METRICS) + 1)]
    for r in results:
        cells = [f"{r.mean(k):.3f} ± {r.std(k):.3f}" if k != "MedR" else f"{r.mean(k):.1f}" for k in METRICS]
        mark = " (best)" if r.name == best else ""
        lines.append(f"| {r.name}{mark} | " + " | ".join(cells) + " |")
    chance = f"chance R@5 = {min(5, candidates) / max(candidates, 1):.3f}"
    lines.append(f"\nheld-out text->video retrieval among {candidates} clips, seeds {list(seeds)}; {chance}")
    return lines


AUDIO_METRICS = (("v2a_R@5", "video->audio R@5"), ("a2v_R@5", "audio->video R@5"),
                 ("a2t_R@5", "audio->text R@5 (zero-shot)"))  # fmt: skip


def audio_table_lines(audio: AudioComparison, seeds: Sequence[int]) -> list[str]:
    """The audio rows (FAC, shared, audio-shuffled control) as a second table in the same format."""
    lines = ["", "| audio variant | " + " | ".join(label for _, label in AUDIO_METRICS) + " |",
             "|" + "---|" * (len(AUDIO_METRICS) + 1)]  # fmt: skip
    for name in audio.runs:
        cells = [f"{audio.mean(name, k):.3f} ± {audio.std(name, k):.3f}" for k, _ in AUDIO_METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    first = audio.first
    lines.append(
        f"\nheld-out audio retrieval among {int(first['clips'])} clips with audio, seeds {list(seeds)}; "
        f"chance v2a R@5 = {first['v2a_chance_R@5']:.3f}, a2t R@5 = {first['a2t_chance_R@5']:.3f} "
        f"({int(first['a2t_candidates'])} distinct captions; audio never meets text in training)"
    )
    return lines


def curves_png(results: Sequence[MethodResult]) -> bytes:
    """Held-out R@5 and training loss per epoch, mean over seeds, one line per method."""
    fig, (left, right) = new_figure(11, 4, cols=2)
    for r in results:
        n = min((len(h) for h in r.histories), default=0)
        if not n:
            continue
        epochs = [h["epoch"] for h in r.histories[0][:n]]
        r5 = np.mean([[row["r_at_5"] for row in h[:n]] for h in r.histories], axis=0)
        loss = np.mean([[row["loss"] for row in h[:n]] for h in r.histories], axis=0)
        style = "--" if r.name.startswith(CONTROL) else "-"
        right.plot(epochs, r5, style, marker="o", ms=3, label=r.name)
        left.plot(epochs, loss / max(loss[0], 1e-9), style, marker="o", ms=3, label=r.name)
    left.set(title="training loss (relative to epoch 1)", xlabel="epoch")
    right.set(title="held-out R@5", xlabel="epoch", ylim=(0, 1))
    right.legend(fontsize=7)
    return figure_png(fig)


def write_comparison(
    root: DataRoot,
    name: str,
    results: Sequence[MethodResult],
    lines: list[str],
    base: TrainConfig,
    audio: AudioComparison | None = None,
    benchmarks: dict[str, Any] | None = None,
) -> dict[str, str]:
    """compare.md (the tables), compare.json (every run's numbers; `benchmarks`: the benchmark table's
    record) and compare.png under train/compare/<name>."""
    base_dir = root.path("train", "compare", check_name(name, "--name"))
    record = {
        "base_config": base.model_dump(mode="json"),
        "best": best_method(results).name,
        "methods": {
            r.name: {
                "mean": {k: r.mean(k) for k in METRICS},
                "std": {k: r.std(k) for k in METRICS},
                "runs": [{"run_id": s["run_id"], "metrics": s["metrics"]} for s in r.runs],
            }
            for r in results
        },
    }
    if audio is not None:
        record["audio"] = {
            "fac_checkpoint": audio.checkpoint,
            "variants": {
                v: {"mean": {k: audio.mean(v, k) for k, _ in AUDIO_METRICS}, "runs": audio.runs[v]}
                for v in audio.runs
            },
        }
    if benchmarks is not None:
        record["benchmarks"] = benchmarks
    paths = {
        "table": f"{base_dir}/compare.md",
        "json": f"{base_dir}/compare.json",
        "plot": f"{base_dir}/compare.png",
    }
    atomic_write_bytes(root, paths["table"], ("\n".join(lines) + "\n").encode())
    atomic_write_bytes(root, paths["json"], json.dumps(record, indent=1, default=str).encode())
    atomic_write_bytes(root, paths["plot"], curves_png(results))
    return paths
