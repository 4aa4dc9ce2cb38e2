"""`howto demo`'s last act: the trained run judged on the demo world's own ground truth, offline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from storage.layout import DataRoot
from tasks.demo.benchmarks import demo_benchmark_dir, write_demo_benchmarks
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
        f"  howto eval crosstask --release {files.crosstask} --videos {files.videos} --split val",
        f"  howto eval youcook2 --annotations {files.youcook2} --videos {files.videos}",
    ]
    for result in (crosstask, youcook):
        lines += ["  " + line for line in result_lines(result, published=True)]
    return lines
