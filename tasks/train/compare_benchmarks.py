"""`howto train compare`'s benchmark table: every run of the comparison judged on CrossTask-style step
recall and YouCook2-style retrieval, the demo world's files when the root holds them, else given ones.

Scoring goes through `howto eval`'s own functions, so each (run, benchmark, split) is recorded in
`eval_metrics` under a fingerprint of the checkpoint, the files and the options: a rerun of compare
reads the scores back and scores nothing. The table itself is built from plain numbers (no I/O).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from storage.layout import DataRoot
from tasks.train.split import is_heldout

# (key in a run's metrics, column header); recalls are fractions like the retrieval table's.
BENCHMARK_METRICS = (
    ("crosstask_recall", "CrossTask recall"),
    ("youcook2_R@1", "YouCook2 R@1"),
    ("youcook2_R@5", "YouCook2 R@5"),
    ("youcook2_R@10", "YouCook2 R@10"),
    ("youcook2_MedR", "YouCook2 MedR"),
)
CROSSTASK_SPLIT, YOUCOOK2_SUBSET = "val", "validation"
# Random-score draws for CrossTask's chance line: the demo uses 20; 5 (the eval default) is enough for
# a footer and is paid once per run, not once per comparison.
CHANCE_DRAWS = 5


@dataclass(frozen=True)
class BenchmarkFiles:
    """The files every run is evaluated on; `demo` when they are the demo world's under the root."""

    crosstask: (
        Path  # a CrossTask release folder (tasks_primary.txt, videos.csv, videos_val.csv, annotations/)
    )
    youcook2: Path  # youcookii_annotations_trainval.json
    videos: Path  # <id>.mp4 (or another suffix) anywhere below
    demo: bool = False


@dataclass
class RunScores:
    """One run's benchmark numbers, whether they were recorded earlier, and how long getting them took."""

    run_id: str
    metrics: dict[str, float]
    cached: bool
    seconds: float


@dataclass
class BenchmarkRow:
    """One row of the benchmark table: a method's runs over the seeds."""

    name: str
    runs: list[RunScores] = field(default_factory=list)

    def values(self, key: str) -> list[float]:
        return [r.metrics[key] for r in self.runs if key in r.metrics]


def demo_files(root: DataRoot) -> BenchmarkFiles | None:
    """The demo world's benchmark files of the root (written by `howto demo`: under a local root, in a local
    temp folder of its own for an object store), if all are there."""
    from tasks.demo.benchmarks import demo_benchmark_dir, demo_benchmark_layout

    files = BenchmarkFiles(*demo_benchmark_layout(demo_benchmark_dir(root)), demo=True)
    if (
        (files.crosstask / "tasks_primary.txt").is_file()
        and files.youcook2.is_file()
        and files.videos.is_dir()
    ):
        return files
    return None


def _csv_ids(path: Path) -> list[str]:
    if not path.is_file():
        return []
    return [line.split(",")[1] for line in path.read_text().splitlines() if line.count(",") >= 1]


def split_note(files: BenchmarkFiles, heldout_fraction: float) -> str:
    """Which videos the benchmark table scores, and whether training could have seen them."""
    val = _csv_ids(files.crosstask / "videos_val.csv")
    if not files.demo:
        return (
            f"CrossTask split {CROSSTASK_SPLIT} ({len(val)} videos) of {files.crosstask}, YouCook2 subset "
            f"{YOUCOOK2_SUBSET} of {files.youcook2}; videos from {files.videos}"
        )
    every = _csv_ids(files.crosstask / "videos.csv")
    ours = {v for v in every if is_heldout(v, heldout_fraction)}
    if ours == set(val):
        return (
            f"the {len(val)} held-out demo videos (CrossTask {CROSSTASK_SPLIT} = YouCook2 {YOUCOOK2_SUBSET}: "
            f"the same hash split as the retrieval table at heldout_fraction {heldout_fraction:g}, never "
            f"trained on); files {files.crosstask.parent}"
        )
    seen = len(set(val) - ours)
    return (
        f"WARNING: the demo benchmark files hold out {len(val)} videos, not the {len(ours)} that "
        f"heldout_fraction {heldout_fraction:g} holds out ({seen} of them were trained on): they were written "
        f"for another fraction (`howto demo` uses 0.3); files {files.crosstask.parent}"
    )


def run_metrics(crosstask: Any, youcook: Any) -> dict[str, float]:
    """The table's numbers (and the chance references) out of the two EvalResults."""
    out: dict[str, float] = {}
    pairs = {
        "crosstask_recall": crosstask.value("recall", None),
        "crosstask_chance": crosstask.value("recall_chance", None),
        **{f"youcook2_{k}": youcook.value(k) for k in ("R@1", "R@5", "R@10", "MedR")},
    }
    for key, value in pairs.items():
        if value is not None:
            out[key] = float(value)
    queries = next((int(r["n"]) for r in youcook.rows if r["metric"] == "R@1"), 0)
    if queries:
        out["youcook2_queries"] = float(queries)
    return out


def evaluate_run(
    root: DataRoot, run_id: str, files: BenchmarkFiles, features: Any, progress: Callable[[str], None]
) -> RunScores:
    """CrossTask (val) and YouCook2 (validation) of one run; recorded ones are read back."""
    from tasks.evaluation.run import Setup, eval_crosstask, eval_youcook2

    started = time.perf_counter()
    # Benchmark videos that are also in the root's frame_features (the demo's held-out ones) keep those rows.
    setup = Setup(root, checkpoint=run_id, features=features, progress=progress, reuse_root_features=True)
    crosstask = eval_crosstask(setup, files.crosstask, files.videos, split=CROSSTASK_SPLIT,
                               chance_draws=CHANCE_DRAWS)  # fmt: skip
    youcook = eval_youcook2(setup, files.youcook2, files.videos, subset=YOUCOOK2_SUBSET)
    return RunScores(
        run_id, run_metrics(crosstask, youcook), crosstask.cached and youcook.cached,
        time.perf_counter() - started,
    )  # fmt: skip


def _cell(values: Sequence[float], key: str) -> str:
    if not values:
        return "-"
    if key.endswith("MedR"):
        return f"{np.mean(values):.1f}"
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def benchmark_table_lines(rows: Sequence[BenchmarkRow], seeds: Sequence[int], note: str) -> list[str]:
    """A Markdown table: mean ± sd over seeds of each benchmark metric per method, then what was scored."""
    lines = ["", "| method | " + " | ".join(label for _, label in BENCHMARK_METRICS) + " |",
             "|" + "---|" * (len(BENCHMARK_METRICS) + 1)]  # fmt: skip
    for row in rows:
        lines.append(
            f"| {row.name} | " + " | ".join(_cell(row.values(k), k) for k, _ in BENCHMARK_METRICS) + " |"
        )
    every = [r for row in rows for r in row.runs]
    chance = [r.metrics["crosstask_chance"] for r in every if "crosstask_chance" in r.metrics]
    queries = max((int(r.metrics.get("youcook2_queries", 0)) for r in every), default=0)
    facts = [f"benchmarks, seeds {list(seeds)}: {note}"]
    if chance:
        facts.append(f"CrossTask chance recall (random scores, same DP) = {np.mean(chance):.3f}")
    if queries:
        facts.append(f"YouCook2 {queries} step queries, chance R@5 = {min(5, queries) / queries:.3f}")
    lines.append("\n" + "; ".join(facts))
    return lines


def benchmark_record(rows: Sequence[BenchmarkRow], files: BenchmarkFiles, note: str) -> dict[str, Any]:
    """compare.json's "benchmarks" entry."""
    return {
        "files": {
            "crosstask": str(files.crosstask),
            "youcook2": str(files.youcook2),
            "videos": str(files.videos),
            "demo": files.demo,
        },  # fmt: skip
        "split": {"crosstask": CROSSTASK_SPLIT, "youcook2": YOUCOOK2_SUBSET, "note": note},
        "methods": {
            row.name: {
                "mean": {k: float(np.mean(row.values(k))) for k, _ in BENCHMARK_METRICS if row.values(k)},
                "std": {k: float(np.std(row.values(k))) for k, _ in BENCHMARK_METRICS if row.values(k)},
                "runs": [{"run_id": r.run_id, "metrics": r.metrics} for r in row.runs],
            }
            for row in rows
        },
    }


def evaluate_all(
    root: DataRoot,
    runs: Mapping[str, Sequence[str]],
    files: BenchmarkFiles,
    features: Any,
    progress: Callable[[str], None] = print,
) -> list[BenchmarkRow]:
    """Every method's runs (method name -> run ids, one per seed) on both benchmarks, in order."""
    rows = []
    for name, run_ids in runs.items():
        row = BenchmarkRow(name)
        for run_id in run_ids:
            scores = evaluate_run(root, run_id, files, features, lambda _line: None)
            row.runs.append(scores)
            m = scores.metrics
            progress(
                f"{name:<24} {run_id}: CrossTask recall {m.get('crosstask_recall', float('nan')):.3f} "
                f"YouCook2 R@5 {m.get('youcook2_R@5', float('nan')):.3f} "
                f"({'cached' if scores.cached else 'scored'}, {scores.seconds:.1f}s)"
            )
        rows.append(row)
    return rows
