"""A model trained on features from random-weight CNNs says so in its model card (and the log)."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import torch

from storage.layout import DataRoot
from storage.shards import list_markers, read_shard, write_shard
from tasks.synthetic.training import write_synthetic_root
from tasks.train.config import TrainConfig
from tasks.train.prepare import build_pairs_shard, data_snapshot, ready_shards
from tasks.train.report import read_card
from tasks.train.run import train
from tests.cpu import worker_threads

CFG = TrainConfig(text="learned", d=32, lr=3e-3, epochs=1, heldout_fraction=0.3, videos_per_batch=4, seed=1)


def _pretrained_except(root: DataRoot, random_videos: set[str]) -> None:
    """Rewrite frame_features as if only `random_videos` had been extracted with random weights."""
    for marker in list_markers(root, "frame_features"):
        table = read_shard(root, "frame_features", marker.shard)
        assert table is not None
        flag = pc.is_in(table.column("video_id"), value_set=pa.array(sorted(random_videos), pa.string()))
        table = table.set_column(table.schema.get_field_index("random_weights"), "random_weights", flag)
        write_shard(root, "frame_features", marker.shard, table, config_hash=marker.config_hash,
                    code_version="test", rows_in=table.num_rows)  # fmt: skip


def test_the_card_counts_the_videos_with_random_weight_features(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    torch.set_num_threads(worker_threads())
    root: DataRoot = write_synthetic_root(tmp_path, n_videos=12, n_steps=6, dim=64)
    videos = sorted(set(read_shard(root, "clips", 0).column("video_id").to_pylist()))
    _pretrained_except(root, set(videos[:3]))
    for shard in ready_shards(root):
        build_pairs_shard(root, shard)
    assert data_snapshot(root)["random_weight_videos"] == 3
    with caplog.at_level(logging.WARNING, logger="tasks.train.run"):
        train(CFG.model_copy(update={"run_id": "mixed"}), root)
    card = read_card(root, "mixed")
    assert card is not None and card["data"]["random_weight_videos"] == 3
    assert "training on the features of 3 video(s) made with random weights" in caplog.text


def test_pretrained_features_leave_nothing_to_warn_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root: DataRoot = write_synthetic_root(tmp_path, n_videos=8, n_steps=4, dim=32)
    _pretrained_except(root, set())
    for shard in ready_shards(root):
        build_pairs_shard(root, shard)
    assert data_snapshot(root)["random_weight_videos"] == 0
