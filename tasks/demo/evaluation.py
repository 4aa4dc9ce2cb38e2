"""`howto demo`'s last act: the trained run judged on the demo world's own ground truth, offline."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

from storage.layout import DataRoot
from tasks.demo.benchmarks import DemoBenchmarks, demo_benchmark_dir, write_demo_benchmarks
from tasks.demo.world import build_world, default_cache_dir
from tasks.evaluation.report import result_lines
from tasks.evaluation.run import Setup, eval_crosstask, eval_youcook2
from tasks.features.config import ExtractFeaturesConfig


def evaluate_demo(
    root: DataRoot,
    run_id: str,
    features: ExtractFeaturesConfig,
    heldout_fraction: float,
    world_dir: Path | None = None,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> list[str]:
    """CrossTask-style recall and YouCook2-style retrieval of `run_id` on the held-out demo videos."""
    world = build_world(world_dir or default_cache_dir(), seed=seed)
    files = write_demo_benchmarks(world, demo_benchmark_dir(root), heldout_fraction)
    setup = Setup(root, checkpoint=run_id, features=features, progress=log, reuse_root_features=True)
    crosstask = eval_crosstask(setup, files.crosstask, files.videos, split="val", chance_draws=20)
    youcook = eval_youcook2(setup, files.youcook2, files.videos, subset="validation")
    lines = [
        f"benchmarks on the {len(files.heldout)} held-out demo videos (files: {files.crosstask.parent}):",
        *("  " + command for command in rerun_commands(root, run_id, files)),
    ]
    for result in (crosstask, youcook):
        lines += ["  " + line for line in result_lines(result, published=True)]
    return lines


def rerun_commands(root: DataRoot, run_id: str, files: DemoBenchmarks) -> list[str]:
    """The two `howto eval` commands that give these numbers again: the run that was scored, and the data
    root it is in (and whose feature settings the benchmark videos get) unless it is the default one."""
    where = ["--checkpoint", run_id]
    if root.url != DataRoot.from_any(None).url:
        where += ["--data-root", root.url]
    commands = [
        ["howto", "eval", "crosstask", "--release", str(files.crosstask), "--videos", str(files.videos)]
        + ["--split", "val", *where],
        ["howto", "eval", "youcook2", "--annotations", str(files.youcook2), "--videos", str(files.videos)]
        + where,
    ]
    return [shlex.join(command) for command in commands]
