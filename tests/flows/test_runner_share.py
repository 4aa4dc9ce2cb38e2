"""Shares of a stage's shards (runner.part/parts): every shard in exactly one share; bad shares refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from flows.runner_config import RunnerConfig
from tasks.artifacts import artifact_key, shard_rows


@pytest.mark.parametrize("parts", [1, 2, 3, 7])
def test_every_shard_belongs_to_exactly_one_share(parts: int) -> None:
    shares = [RunnerConfig(part=p, parts=parts) for p in range(parts)]
    for shard in range(50):
        assert sum(share.owns(shard) for share in shares) == 1


@pytest.mark.parametrize(("part", "parts"), [(2, 2), (-1, 2), (0, 0)])
def test_share_out_of_range_is_refused(part: int, parts: int) -> None:
    with pytest.raises(ValidationError, match="part"):
        RunnerConfig(part=part, parts=parts)


def test_shard_table_rows_sorted_with_drops_spelled_out() -> None:
    manifests = [
        {"shard": 2, "rows_in": 5, "rows_out": 3, "drops": {"short": 1, "blank": 1}, "cached": False},
        {"shard": 0, "rows_in": 4, "rows_out": 4, "drops": {}, "cached": True, "errors": 1},
    ]
    assert shard_rows(manifests) == [
        {"shard": 0, "cached": True, "rows_in": 4, "rows_out": 4, "errors": 1, "drops": "-"},
        {
            "shard": 2,
            "cached": False,
            "rows_in": 5,
            "rows_out": 3,
            "errors": 0,
            "drops": "blank: 1, short: 1",
        },
    ]
    assert artifact_key("train_embedding: pairs") == "train-embedding--pairs"


def test_split_run_of_a_stage_that_cannot_be_split_is_refused() -> None:
    from flows.pipeline import check_share

    check_share(RunnerConfig(part=1, parts=2), ["tasks", "captions", "features", "train"])
    check_share(RunnerConfig(), ["tasks", "search", "captions", "features", "train"])
    with pytest.raises(
        ValueError, match="splits only the tasks, captions, features, audio stages; run search in one run"
    ):
        check_share(RunnerConfig(part=0, parts=2), ["tasks", "search", "train"])
