"""Crash safety: the pipeline killed with SIGKILL at random points in different stages, rerun each time,
ends with the same datasets as an uninterrupted run, no temp files and no orphan processes."""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import pytest

from flows.demo import demo_pipeline_config
from storage.layout import DataRoot
from tests.pipeline.crash_helpers import COLLECTED, PipelineProcess, canonical, pipeline_env, temp_leftovers

STAGES = ["tasks", "search", "captions", "features"]
# Where each kill lands: while a stage's subflow runs (the flow names Prefect logs as it begins them).
# Six attempts for at least five kills: a kill late in a resumed run can miss a stage that finishes first.
KILL_IN = [
    "mine-tasks",
    "search_videos",
    "fetch_captions",
    "extract_features",
    "extract_features",
    "extract_features",
]


def small_config(site_url: str, tmp: Path) -> Path:
    """The demo config on two articles, five hits each, smallest feature inputs: crash safety does not
    need the whole world."""
    cfg = demo_pipeline_config(site_url)
    cfg = cfg.model_copy(
        update={
            "tasks": cfg.tasks.model_copy(update={"max_articles": 2}),
            "search": cfg.search.model_copy(update={"max_results": 5}),
            "features": cfg.features.model_copy(update={"short_side_2d": 32}),
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
        if kills == 5:
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
    assert kills >= 5, f"only {kills} kills landed"
    assert clean.wait(timeout=900) == 0, baseline_log.read_text()[-5000:]
    final = PipelineProcess(args_for(config, crashed), env, log)
    assert final.wait(timeout=900) == 0, log.read_text()[-5000:]
    assert final.group_alive() == []

    for dataset in COLLECTED:
        a, b = canonical(DataRoot.from_any(baseline), dataset), canonical(DataRoot.from_any(crashed), dataset)
        assert a.num_rows == b.num_rows > 0, dataset
        for name in a.column_names:
            if name == "vector":
                # Same frames through the same model; batch composition can differ after a resume, so
                # fp16 values are compared to fp16 rounding.
                va = np.array(a.column(name).to_pylist(), dtype=np.float32)
                vb = np.array(b.column(name).to_pylist(), dtype=np.float32)
                assert np.allclose(va, vb, atol=2e-3), f"{dataset}.{name} differs"
            else:
                assert a.column(name).to_pylist() == b.column(name).to_pylist(), f"{dataset}.{name} differs"
    assert temp_leftovers(crashed) == []
