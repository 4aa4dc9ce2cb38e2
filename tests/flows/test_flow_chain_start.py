"""The pipeline and recrawl flows, as a deployment runs them (no CLI in front to check first), on a data root
where the first chosen stage's input was never made: one "run X first" line and nothing written, where the
run used to find zero shards in every stage, Complete, and so trigger the next link of the chain."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from prefect import flow

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


STAGE_FLOWS = {
    "search": (
        "flows.search_videos",
        "search_videos",
        {},
        r"no finished tasks shards in .*: run the tasks stage",
    ),
    "captions": (
        "flows.fetch_captions",
        "fetch_captions",
        {},
        r"no finished videos shards in .*: run the search",
    ),
    "features": (
        "flows.extract_features",
        "extract_features",
        {"cfg": CFG.features},
        r"no finished videos shards in .*: run the search stage first",
    ),
    "audio": ("flows.extract_audio", "extract_audio", {"cfg": CFG.audio}, r"no finished videos shards in .*"),
}


@pytest.mark.parametrize("stage", sorted(STAGE_FLOWS))
def test_a_stage_deployment_on_a_root_without_its_input_fails_naming_the_stage_to_run(
    tmp_path: Path, stage: str
) -> None:
    # The per-stage deployments (extract-features, fetch-captions, ...) run these flows with no command in
    # front: they used to find zero shards and Complete, firing the automations that wait for them.
    module, name, kwargs, message = STAGE_FLOWS[stage]
    stage_flow = getattr(importlib.import_module(module), name)
    root = tmp_path / "mistyped-root"
    with pytest.raises(UpstreamMissing, match=message):
        stage_flow(data_root=str(root), **kwargs)
    assert not any(p.suffix == ".parquet" for p in _files(root))


def test_a_stage_inside_a_pipeline_run_leaves_its_input_to_the_run(tmp_path: Path) -> None:
    # As a subflow, an earlier stage of the same run made (or failed to make) the input, and that stage's
    # summary says so: the stage itself reports zero shards instead of a "run X first" for a stage just run.
    from flows.extract_features import extract_features

    @flow(name="a-run-with-a-features-stage")
    def run(root: str) -> dict:
        return extract_features(cfg=CFG.features, data_root=root)

    summary = run(str(tmp_path / "root"))
    assert summary["shards"] == 0
