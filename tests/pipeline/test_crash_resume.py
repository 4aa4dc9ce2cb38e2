"""Crash safety: the pipeline killed with SIGKILL at random points in every stage (training too), rerun
each time, then a shard left between rename and marker and a shard truncated under its marker: it ends
with the same datasets and training history as an uninterrupted run, no temp files, no orphan processes."""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import pytest

from flows.demo import demo_pipeline_config
from storage.layout import DataRoot
from storage.schemas import get_schema
from tests.pipeline.crash_helpers import (
    COLLECTED,
    PipelineProcess,
    assert_same_datasets,
    canonical,
    pipeline_env,
    temp_leftovers,
)

STAGES = ["tasks", "search", "captions", "features", "train"]
# Where each kill lands: while a stage's subflow runs (the flow names Prefect logs as it begins them).
# Seven attempts for at least six kills: a kill late in a resumed run can miss a stage that finishes first.
KILL_IN = [
    "mine-tasks",
    "search_videos",
    "fetch_captions",
    "extract_features",
    "extract_features",
    "train_embedding",
    "train_embedding",
]
KILLS = 6
# Columns of train_metrics that time the work rather than record what it computed.
TIMING = {"epoch_s", "load_s"}


def small_config(site_url: str, tmp: Path) -> Path:
    """The demo config on two articles, five hits each, smallest feature inputs: crash safety does not
    need the whole world."""
    cfg = demo_pipeline_config(site_url)
    cfg = cfg.model_copy(
        update={
            "tasks": cfg.tasks.model_copy(update={"max_articles": 2}),
            "search": cfg.search.model_copy(update={"max_results": 5}),
            "features": cfg.features.model_copy(update={"short_side_2d": 32}),
            "train": cfg.train.model_copy(update={"epochs": 4}),
        }
    )
    path = tmp / "config.json"
    path.write_text(cfg.model_dump_json())
    return path


def args_for(config: Path, root: Path) -> list[str]:
    out = ["--config", str(config), "--data-root", str(root)]
    for stage in STAGES:
        out += ["--stage", stage]
    return out


@pytest.mark.slow
def test_killed_pipeline_resumes_to_identical_datasets(demo_site, tmp_path: Path) -> None:
    config = small_config(demo_site.url, tmp_path)
    env = pipeline_env(tmp_path / "prefect-home")
    log = tmp_path / "pipeline.log"

    # The uninterrupted run goes alongside the crashed ones (its own Prefect home and log): most of a run's
    # wall time is process and server start-up, so the two overlap well on two cores.
    baseline = tmp_path / "baseline"
    baseline_log = tmp_path / "baseline.log"
    clean = PipelineProcess(
        args_for(config, baseline), pipeline_env(tmp_path / "prefect-home-baseline"), baseline_log
    )

    crashed = tmp_path / "crashed"
    rng = random.Random(20261124)
    kills = 0
    for where in KILL_IN:
        if kills == KILLS:
            break
        run = PipelineProcess(args_for(config, crashed), env, log)
        if run.wait_for(f"for flow '{where}'", timeout=600):
            time.sleep(rng.uniform(0.2, 4.0))
            if run.proc.poll() is None:
                run.kill_group()
                kills += 1
                assert run.group_alive() == [], "processes of a killed run survived"
                continue
        run.wait(timeout=600)
    assert kills >= KILLS - 1, f"only {kills} kills landed"
    assert clean.wait(timeout=900) == 0, baseline_log.read_text()[-5000:]
    final = PipelineProcess(args_for(config, crashed), env, log)
    assert final.wait(timeout=900) == 0, log.read_text()[-5000:]
    assert final.group_alive() == []

    # Two states a crash or a disk can leave that no kill above is sure to hit: a captions shard renamed
    # into place whose marker was never written, and a frame_features shard cut short under its marker.
    root = DataRoot.from_any(crashed)
    Path(root.marker_path("captions", get_schema("captions").version, 0)).unlink()
    features = Path(root.shard_path("frame_features", get_schema("frame_features").version, 0))
    features.write_bytes(features.read_bytes()[: features.stat().st_size // 2])
    repair = PipelineProcess(args_for(config, crashed), env, log)
    assert repair.wait(timeout=900) == 0, log.read_text()[-5000:]
    assert "it will be redone" in log.read_text()  # the truncation was noticed and logged

    assert_same_datasets(DataRoot.from_any(baseline), root, [*COLLECTED, "clip_pairs", "text_embeddings"])
    # Training resumed from its epoch checkpoints computes the same history as one uninterrupted run.
    a, b = canonical(DataRoot.from_any(baseline), "train_metrics"), canonical(root, "train_metrics")
    assert a.num_rows == b.num_rows == 4
    assert a.column("run_id").to_pylist() == b.column("run_id").to_pylist()
    for name in sorted(set(a.column_names) - TIMING - {"run_id"}):
        va, vb = a.column(name).to_pylist(), b.column(name).to_pylist()
        assert np.allclose(va, vb, atol=1e-5), f"train_metrics.{name} differs: {va} vs {vb}"
    assert temp_leftovers(crashed) == []
