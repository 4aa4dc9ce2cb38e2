"""Per-video training material: caption lines with their times plus the frame rows to pool any span."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from storage.layout import DataRoot
from storage.shards import read_shard
from tasks.train.data import vectors_to_numpy
from tasks.train.pooling import (
    MODELS,
    REFERENCE_POOLING,
    ClipPooling,
    features_by_video,
    pool_clips,
)
from tasks.train.second_tokens import covered_seconds, second_tokens, span_tokens, token_mean, token_widths
from tasks.train.split import heldout_mask


@dataclass
class VideoLines:
    """One video: its caption lines (time order) and each feature model's rows."""

    video_id: str
    task_id: str | None
    starts: np.ndarray  # (n,) int64 ms
    ends: np.ndarray  # (n,) int64 ms
    texts: list[str]
    line_vectors: np.ndarray  # (n, d_video) float16: each line's pooled vector (clip_pairs)
    rows: dict[str, np.ndarray]  # model -> (rows, dim) float16, L2'd rows in time order
    pooling: ClipPooling = REFERENCE_POOLING  # how sampled spans are pooled, as clip_pairs' lines were
    _tokens: np.ndarray | None = field(default=None, repr=False)

    @property
    def seconds(self) -> int:
        """Whole seconds covered by every model's rows (at least 1)."""
        return covered_seconds(self.rows)

    def pool(self, spans_ms: np.ndarray, pooling: ClipPooling | None = None) -> np.ndarray:
        """(n, d_video) float32: each span pooled as the run's clip vectors are (per model, L2, concat)."""
        models = tuple(m for m in MODELS if m in self.rows)
        spans = np.asarray(spans_ms, dtype=np.int64).reshape(-1, 2)
        return pool_clips(self.rows, spans, models, self.pooling if pooling is None else pooling)

    def mean_tokens(self, a_s: int, b_s: int) -> np.ndarray:
        """(d_video,) float32: the mean of the per-second tokens of [a, b) s, L2 per model (`token_mean`):
        VideoCLIP's lite tower's input, a training window's as an evaluated clip's."""
        return token_mean(span_tokens(self.tokens(), a_s, b_s), token_widths(self.rows))

    def tokens(self) -> np.ndarray:
        """(seconds, d_video) float16 per-second tokens (`second_tokens`); computed once per video."""
        if self._tokens is None:
            self._tokens = second_tokens(self.rows)
        return self._tokens


@dataclass
class VideoStore:
    """The videos of one or more shards (one split), in a stable order."""

    videos: list[VideoLines]

    def __len__(self) -> int:
        return len(self.videos)


def _shuffle_texts(videos: list[VideoLines], seed: int, shard: int) -> None:
    """Control: captions permuted across the shard's lines (times and frames stay), fixed per shard."""
    texts = [t for v in videos for t in v.texts]
    perm = np.random.default_rng([seed, shard, 7]).permutation(len(texts))
    shuffled = [texts[i] for i in perm]
    at = 0
    for v in videos:
        v.texts = shuffled[at : at + len(v.texts)]
        at += len(v.texts)


def load_videos(
    root: DataRoot,
    shard: int,
    split: str,
    heldout_fraction: float,
    shuffle_seed: int | None = None,
    models: tuple[str, ...] = MODELS,
    pooling: ClipPooling = REFERENCE_POOLING,
    only: set[str] | None = None,
) -> list[VideoLines]:
    """One shard's videos of a split (with `only`, those of them it names): lines from `clip_pairs` k,
    frame rows from `frame_features` k.

    `clip_pairs` only holds lines of videos whose features were extracted, so every video here has
    rows for every model.
    """
    pairs = read_shard(root, "clip_pairs", shard)
    features = read_shard(root, "frame_features", shard)
    if pairs is None or features is None or pairs.num_rows == 0:
        return []
    held = heldout_mask(pairs.column("video_id"), heldout_fraction)
    keep = held if split == "heldout" else ~held
    if only is not None:
        keep &= np.array([v in only for v in pairs.column("video_id").to_pylist()], dtype=bool)
    pairs = pairs.filter(pa.array(keep))
    if pairs.num_rows == 0:  # every video of the shard in the other split (a re-crawl's shard of one or two)
        return []
    pairs = pairs.sort_by([("video_id", "ascending"), ("idx", "ascending")])
    wanted = set(pairs.column("video_id").to_pylist())
    keep = pa.array([v in wanted for v in features.column("video_id").to_pylist()], pa.bool_())
    rows = features_by_video(features.filter(keep), models)
    vids = np.asarray(pairs.column("video_id").to_pylist(), dtype=object)
    tasks = pairs.column("task_id").to_pylist()
    starts = pairs.column("start_ms").to_numpy().astype(np.int64)
    ends = pairs.column("end_ms").to_numpy().astype(np.int64)
    texts = pairs.column("text").to_pylist()
    vectors = vectors_to_numpy(pairs.column("vector"))
    out: list[VideoLines] = []
    bounds = np.flatnonzero(vids[1:] != vids[:-1]) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(vids)], strict=True):
        vid = str(vids[lo])
        if vid in rows:
            out.append(
                VideoLines(
                    vid,
                    tasks[lo],
                    starts[lo:hi],
                    ends[lo:hi],
                    texts[lo:hi],
                    vectors[lo:hi],
                    rows[vid].rows,
                    pooling,
                )
            )
    if shuffle_seed is not None:
        _shuffle_texts(out, shuffle_seed, shard)
    return out


def load_store(
    root: DataRoot,
    shards: list[int],
    split: str,
    heldout_fraction: float,
    shuffle_seed: int | None = None,
    pooling: ClipPooling = REFERENCE_POOLING,
) -> VideoStore:
    """The videos of several shards (a training window, or every held-out video)."""
    return VideoStore(
        [
            v
            for s in shards
            for v in load_videos(root, s, split, heldout_fraction, shuffle_seed, pooling=pooling)
        ]
    )
