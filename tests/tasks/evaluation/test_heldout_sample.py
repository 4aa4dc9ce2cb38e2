"""Held-out evaluation draws clips at random (seeded) across all held-out videos, not the first N."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from storage.layout import DataRoot
from tasks.evaluation.heldout import sample_heldout
from tasks.training.data import pair_shards
from tasks.training.prepare import build_pairs_shard, ready_shards
from tasks.training.synthetic import write_synthetic_root


def _root(tmp_path: Path) -> DataRoot:
    root = write_synthetic_root(tmp_path / "root", n_videos=60, clips_per_video=8, shards=3, dim=16)
    for shard in ready_shards(root):
        build_pairs_shard(root, shard)
    return root


def test_sample_spans_every_shard_and_is_seeded(tmp_path: Path) -> None:
    root = _root(tmp_path)
    shards = pair_shards(root)
    everything = sample_heldout(root, shards, 0.5, 10_000, seed=0, with_text=False)
    assert len(everything) > 40
    drawn = sample_heldout(root, shards, 0.5, 20, seed=0, with_text=False)
    assert len(drawn) == 20
    assert set(drawn.clip_ids) <= set(everything.clip_ids)
    # Not the first 20 in shard order: the draw reaches videos of every shard.
    assert drawn.clip_ids != everything.clip_ids[:20]
    shards_reached = {int(v[3:]) // 20 for v in drawn.video_ids}  # 20 videos per synthetic shard
    assert shards_reached == {0, 1, 2}
    assert len(set(drawn.video_ids)) > 8
    again = sample_heldout(root, shards, 0.5, 20, seed=0, with_text=False)
    assert again.clip_ids == drawn.clip_ids and np.array_equal(again.video, drawn.video)
    other = sample_heldout(root, shards, 0.5, 20, seed=1, with_text=False)
    assert other.clip_ids != drawn.clip_ids
