"""One rule decides what a stage config hashes and records: RunOnly fields and access never enter."""

from __future__ import annotations

import pytest

from flows.pipeline_config import PipelineConfig
from tasks.captions.config import FetchCaptionsConfig
from tasks.features.config import ExtractFeaturesConfig
from tasks.search.config import SearchVideosConfig
from tasks.stage_config import StageConfig
from tasks.youtube.access import YoutubeAccess

# The hashes the hand-kept exclusion lists gave before the access model existed: data roots made then
# stay cached (the same fields are hashed, in the same way).
EARLIER_HASHES = [
    (SearchVideosConfig(), "0c9d3c2282258ba5"),
    (SearchVideosConfig(search_prefix="demosearch", max_results=50), "5473801dd685313d"),
    (FetchCaptionsConfig(), "037e8abf63482a61"),
    (FetchCaptionsConfig(min_words=5), "b85441ba17acfb6f"),
    (ExtractFeaturesConfig(), "8aaaaba4a313f17a"),
    (
        ExtractFeaturesConfig(random_weights=True, short_side_2d=64, size_3d=32, device="cpu"),
        "098f6323185d1bb5",
    ),
]


@pytest.mark.parametrize(("cfg", "expected"), EARLIER_HASHES)
def test_data_hash_is_unchanged_for_existing_data_roots(cfg: StageConfig, expected: str) -> None:
    assert cfg.data_hash() == expected


def test_run_only_fields_are_neither_hashed_nor_recorded() -> None:
    assert SearchVideosConfig.run_only_fields() == {
        "tasks_per_shard", "videos_per_shard", "recheck_missing", "recheck_captions"}  # fmt: skip
    assert "device" in ExtractFeaturesConfig.run_only_fields() and not FetchCaptionsConfig.run_only_fields()
    fast = ExtractFeaturesConfig(device="cpu", batch_2d=1, decode_workers=7, keep_videos=True, min_free_gb=0)
    assert fast.data_hash() == ExtractFeaturesConfig().data_hash()
    assert "device" not in fast.data_fields() and fast.data_fields()["short_side_2d"] == 224
    assert SearchVideosConfig(max_results=5).data_hash() != SearchVideosConfig().data_hash()


def test_access_is_no_stage_field_so_no_hash_or_marker_can_hold_it() -> None:
    access_fields = set(YoutubeAccess.model_fields)
    for cfg in (SearchVideosConfig(), FetchCaptionsConfig(), ExtractFeaturesConfig()):
        assert not access_fields & set(type(cfg).model_fields), type(cfg).__name__
    # It lives once, in the pipeline config, beside the stage configs it serves.
    holders = [name for name, f in PipelineConfig.model_fields.items() if f.annotation is YoutubeAccess]
    assert holders == ["youtube"]
