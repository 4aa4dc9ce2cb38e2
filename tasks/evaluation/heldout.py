"""A seeded random sample of held-out clips across all held-out videos (not the first N in shard order)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from storage.layout import DataRoot
from storage.schemas import get_schema
from storage.shards import read_parquet_file
from tasks.train.data import Pairs, load_shard
from tasks.train.split import heldout_mask


def _heldout_count(root: DataRoot, shard: int, fraction: float) -> int:
    """Held-out rows of one clip_pairs shard, reading the video_id column only. Each video is hashed once
    (`heldout_mask`), not each of its clips: hashing every row took 5.2 s over 6.6M clips, done by every
    training run and `howto eval heldout`."""
    path = root.shard_path("clip_pairs", get_schema("clip_pairs").version, shard)
    if not root.exists(path):
        return 0
    ids = read_parquet_file(root, path, columns=["video_id"]).column("video_id")
    return int(np.count_nonzero(heldout_mask(ids, fraction)))


def sample_heldout(
    root: DataRoot,
    shards: Sequence[int],
    fraction: float,
    max_clips: int,
    seed: int,
    with_text: bool,
) -> Pairs:
    """Up to `max_clips` held-out clip pairs drawn uniformly (seeded) from every held-out clip.

    Two passes: count each shard's held-out rows from its video ids, draw global row numbers, then
    load only the shards that hold drawn rows and keep those rows (memory stays one shard at a time).
    """
    counts = [_heldout_count(root, s, fraction) for s in shards]
    total = sum(counts)
    rng = np.random.default_rng([seed, 17])
    drawn = np.sort(rng.choice(total, max_clips, replace=False)) if total > max_clips else np.arange(total)
    parts, offset = [], 0
    for shard, count in zip(shards, counts, strict=True):
        mine = drawn[(drawn >= offset) & (drawn < offset + count)] - offset
        offset += count
        if len(mine):
            parts.append(load_shard(root, shard, "heldout", fraction, with_text).take(mine))
    return Pairs.concat(parts)
