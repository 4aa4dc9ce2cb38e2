"""Per-second token inputs of given clips (the transformer video tower's), one shard's videos at a time."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from storage.layout import DataRoot
from tasks.train.batches import pad_sequences, window_tokens
from tasks.train.pooling import REFERENCE_POOLING, ClipPooling
from tasks.train.second_tokens import clip_seconds
from tasks.train.videos import load_videos


class NoFrameRows(LookupError):
    """Clips whose video has no frame rows in the shards read (the message names some)."""


def clip_tokens(
    root: DataRoot,
    shards: Sequence[int],
    split: str,
    heldout_fraction: float,
    video_ids: Sequence[str] | np.ndarray,
    spans_ms: np.ndarray,
    pooling: ClipPooling = REFERENCE_POOLING,
) -> np.ndarray:
    """(n, T, d_video) float32 zero-padded per-second tokens of each clip's seconds [floor(start),
    ceil(end)), T the longest clip's, as the tower trained on its windows.

    A shard's videos are read one shard at a time, and only those of the given clips: the trainer's
    held-out sample is a few thousand clips, while every held-out video's frame rows at once (as they
    were read) grow with the dataset, some 10% of HowTo100M's 1.2M videos at about 10 KB a second."""
    where: dict[str, list[int]] = {}
    for i, vid in enumerate(video_ids):
        where.setdefault(str(vid), []).append(i)
    seqs: list[np.ndarray] = [np.zeros((0, 0), np.float32)] * len(video_ids)
    for shard in shards:
        if not where:
            break
        for video in load_videos(root, shard, split, heldout_fraction, pooling=pooling, only=set(where)):
            for i in where.pop(video.video_id, []):
                seqs[i] = window_tokens(video, *clip_seconds(*spans_ms[i]))
    if where:
        missing = sorted(where)
        raise NoFrameRows(
            f"{root.url}: no frame rows for {len(missing)} video(s) of the {split} clips in clip_pairs' "
            f"shards (e.g. {', '.join(missing[:3])}): rebuild the pairs (howto train)"
        )
    return pad_sequences(seqs, max(len(s) for s in seqs))[0] if seqs else np.zeros((0, 1, 0), np.float32)
