"""A shard whose videos all fall into one split loads as nothing for the other, not as a crash: a re-crawl's
shard of one or two new videos has every video on one side of the held-out split."""

from __future__ import annotations

from pathlib import Path

from tasks.train.prepare import ready_shards
from tasks.train.videos import load_store, load_videos
from tests.tasks.train.synthetic_roots import paired_synthetic_root


def test_a_split_with_no_video_of_the_shard_is_empty(tmp_path: Path) -> None:
    root = paired_synthetic_root(tmp_path / "data", n_videos=2, n_steps=4, dim=8)
    shards = ready_shards(root)
    # Fraction 0 holds no video out, 1 holds every one: the other split of each shard has no row.
    assert load_videos(root, shards[0], "heldout", 0.0) == []
    assert load_videos(root, shards[0], "train", 1.0) == []
    assert len(load_store(root, shards, "train", 0.0)) == len(load_store(root, shards, "heldout", 1.0)) == 2
