"""A re-crawl that added no clip leaves the training run as it was: its empty shards (a re-check shard, new
videos all dropped) are not in the run's data hash, so the chain's training finds the run trained."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from storage.layout import DataRoot
from storage.shards import read_shard, write_shard
from tasks.synthetic.training import write_synthetic_root
from tasks.train.config import TrainConfig, run_id_for
from tasks.train.prepare import build_pairs_shard, data_snapshot, earlier_pairs_hash, ready_shards
from tasks.train.run import train
from tests.cpu import worker_threads

CFG = TrainConfig(text="learned", d=32, lr=3e-3, epochs=1, heldout_fraction=0.3, videos_per_batch=4, seed=1)


def _root(tmp_path: Path) -> DataRoot:
    torch.set_num_threads(worker_threads())
    root = write_synthetic_root(tmp_path, n_videos=12, n_steps=6, dim=64)
    for shard in ready_shards(root):
        build_pairs_shard(root, shard)
    return root


def _add_shard(root: DataRoot, shard: int, empty: bool) -> None:
    """What a re-crawl's new videos shard gives training: clips and frame_features shards (none, or shard
    0's again), then its clip_pairs shard, built as the chain builds it."""
    for dataset in ("clips", "frame_features"):
        table = read_shard(root, dataset, 0)
        assert table is not None
        part = table.slice(0, 0) if empty else table
        write_shard(
            root, dataset, shard, part, config_hash="recrawl", code_version="t", rows_in=part.num_rows
        )
    build_pairs_shard(root, shard)


def test_a_recrawl_that_added_no_clip_trains_no_new_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = _root(tmp_path)
    first = train(CFG, root)
    named = train(CFG.model_copy(update={"run_id": "weekly"}), root)
    assert not first["cached"] and not named["cached"]
    _add_shard(root, 7, empty=True)  # before, a new default run id: the same data trained again
    with caplog.at_level(logging.INFO, logger="tasks.train.run"):
        again = train(CFG, root)
    assert again["run_id"] == first["run_id"] and again["cached"]
    assert data_snapshot(root)["empty_shards"] == 1
    assert "1 clip_pairs shard(s) with no pairs" in caplog.text and "already trained" in caplog.text
    # A run named with --run-id is read back too (before: refused, "trained on other clip_pairs").
    assert train(CFG.model_copy(update={"run_id": "weekly"}), root)["cached"]
    # Clips the run has not seen still make another run.
    _add_shard(root, 8, empty=False)
    assert train(CFG, root)["run_id"] != first["run_id"]


def test_a_run_begun_when_empty_shards_counted_is_still_found(tmp_path: Path) -> None:
    """A root that already had an empty shard: its run's id was made from a hash that counted it. That run is
    this data's run still (resumed, or found trained), not begun again under the new id."""
    root = _root(tmp_path)
    _add_shard(root, 7, empty=True)
    snapshot = data_snapshot(root)
    earlier = run_id_for(CFG, earlier_pairs_hash(snapshot["per_shard"]))
    assert earlier != run_id_for(CFG, snapshot["hash"])
    train(CFG.model_copy(update={"run_id": earlier}), root)  # as the code before wrote it
    again = train(CFG, root)
    assert again["run_id"] == earlier and again["cached"]
