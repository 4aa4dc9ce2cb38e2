"""The pipeline and recrawl flows, as a deployment runs them (no CLI in front to check first), on a data root
where the first chosen stage's input was never made: one "run X first" line and nothing written, where the
run used to find zero shards in every stage, Complete, and so trigger the next link of the chain."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.pipeline import pipeline
from flows.pipeline_config import PipelineConfig
from flows.recrawl import recrawl
from tasks.shard_runner import UpstreamMissing

# Random weights allowed: the features stage would otherwise stop on its weights, not on its input.
CFG = PipelineConfig.model_validate({"features": {"random_weights": True}})


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_a_features_run_on_a_root_without_videos_fails_naming_the_stage_to_run(tmp_path: Path) -> None:
    root = tmp_path / "mistyped-root"
    with pytest.raises(UpstreamMissing, match=r"no finished videos shards in .*: run the search stage first"):
        pipeline(cfg=CFG, data_root=str(root), stages=("features", "audio"))
    assert _files(root) == []


def test_a_recrawl_on_a_root_without_tasks_fails_before_it_records_a_crawl(tmp_path: Path) -> None:
    root = tmp_path / "mistyped-root"
    with pytest.raises(UpstreamMissing, match=r"no finished tasks shards in .*: run the tasks stage first"):
        recrawl(cfg=CFG, data_root=str(root), stages=["search", "captions"])
    assert _files(root) == []  # no crawl_changes generation, no search plan
