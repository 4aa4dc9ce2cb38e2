"""Clip vectors from frame features: per-model pooling over the clip span, L2, concat 2D+3D.

HowTo100M max-pools each model's rows over the caption line's own span. `ClipPooling` can mean-pool
instead and widen every span by some seconds of context on both sides, as VideoCLIP's video windows
overlap their text: a 2 s caption line covers two or three feature rows, and its neighbours' frames
say which step it sits in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Feature rows per second of each model: 2D at 1 fps; 3D one row per 16 frames at 24 fps.
MODEL_FPS: dict[str, float] = {"resnet152": 1.0, "resnext101": 24.0 / 16.0}
MODELS: tuple[str, ...] = ("resnet152", "resnext101")


@dataclass(frozen=True)
class ClipPooling:
    """How a span's feature rows become one vector: "max" or "mean" per model, over the span widened
    by `context_s` on each side (0: the span itself, the reference)."""

    pool: Literal["max", "mean"] = "max"
    context_s: float = 0.0

    def __post_init__(self) -> None:
        if self.pool not in ("max", "mean"):
            raise ValueError(f"clip pooling must be max or mean, not {self.pool!r}")
        if not 0 <= self.context_s <= 60:
            raise ValueError(f"clip context must be 0-60 s, not {self.context_s}")

    def config(self) -> dict[str, Any]:
        """The hashed description; the reference's stays as it always was, so old shards stay valid."""
        out: dict[str, Any] = {"pool": self.pool}
        if self.context_s:
            out["context_s"] = self.context_s
        return out

    def widen(self, spans_ms: np.ndarray) -> np.ndarray:
        if not self.context_s:
            return spans_ms
        pad = int(round(self.context_s * 1000))
        return np.stack([np.maximum(spans_ms[:, 0] - pad, 0), spans_ms[:, 1] + pad], axis=1)


REFERENCE_POOLING = ClipPooling()


class PoolingMismatch(ValueError):
    """Stored clip vectors were pooled otherwise than the checkpoint or run that would use them."""


def pooling_of(config: Mapping[str, Any]) -> ClipPooling:
    """A run's clip pooling from its saved TrainConfig (runs from before the setting: the reference)."""
    return ClipPooling(config.get("clip_pool", "max"), float(config.get("clip_context_s", 0.0)))


def span_rows(start_ms: int, end_ms: int, fps: float, n_rows: int) -> tuple[int, int]:
    """Rows int(s*fps) .. int(e*fps)+1 (HowTo100M), clamped so at least one row is pooled."""
    first = min(int(start_ms / 1000.0 * fps), n_rows - 1)
    last = min(int(end_ms / 1000.0 * fps) + 1, n_rows)
    return first, max(last, first + 1)


def _l2(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def pool_clips(
    rows_by_model: Mapping[str, np.ndarray],
    spans_ms: np.ndarray,
    models: tuple[str, ...] = MODELS,
    pooling: ClipPooling = REFERENCE_POOLING,
) -> np.ndarray:
    """(clips, sum of dims) float32: each model's rows pooled over each (widened) span, L2'd, concatenated."""
    spans_ms = pooling.widen(np.asarray(spans_ms).reshape(-1, 2))
    reduce = np.max if pooling.pool == "max" else np.mean
    parts = []
    for model in models:
        rows = rows_by_model[model].astype(np.float32)
        pooled = np.empty((len(spans_ms), rows.shape[1]), dtype=np.float32)
        for i, (start, end) in enumerate(spans_ms):
            first, last = span_rows(int(start), int(end), MODEL_FPS[model], rows.shape[0])
            pooled[i] = reduce(rows[first:last], axis=0)
        parts.append(_l2(pooled))
    return np.concatenate(parts, axis=1)


@dataclass
class VideoFeatures:
    """One video's feature rows per model, ordered by row index."""

    rows: dict[str, np.ndarray]


def features_by_video(table: pa.Table, models: tuple[str, ...] = MODELS) -> dict[str, VideoFeatures]:
    """Group a `frame_features` table into per-video, per-model row matrices (status ok rows only).

    A video with a failed extraction, or lacking one of the models, is left out: its clips are dropped
    with a reason by the caller.

    Only the key columns are filtered and sorted; each video's vectors are then gathered once from the
    column's values (`VectorRows`). Filtering and sorting the whole table cost about 5x its size: a shard
    of 250 videos (744 MB of features, 187 row groups) peaked at 5.1 GB to read and pair, 2.2 GB now.
    """
    ok = pc.equal(table.column("status"), "ok")
    keys = pa.table(
        {
            "video_id": table.column("video_id"),
            "model": table.column("model"),
            "idx": table.column("idx"),
            "row": pa.array(np.arange(table.num_rows, dtype=np.int64)),
        }
    ).filter(ok)
    if keys.num_rows == 0:
        return {}
    keys = keys.sort_by([("video_id", "ascending"), ("model", "ascending"), ("idx", "ascending")])
    vectors = VectorRows(table.column("vector"), keys.column("row").to_numpy())
    vids = keys.column("video_id").to_numpy(zero_copy_only=False)
    names = keys.column("model").to_numpy(zero_copy_only=False)
    keys_text = np.char.add(np.char.add(vids.astype(str), "\x00"), names.astype(str))
    out: dict[str, VideoFeatures] = {}
    bounds = np.flatnonzero(keys_text[1:] != keys_text[:-1]) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(keys_text)], strict=True):
        out.setdefault(str(vids[lo]), VideoFeatures({})).rows[str(names[lo])] = vectors.matrix(lo, hi)
    return {vid: f for vid, f in out.items() if all(m in f.rows for m in models)}


class VectorRows:
    """Rows of a list column (in a chosen order) as matrices, read in place from each chunk's values: a
    shard is read as one chunk per row group, and combining them would copy the whole column."""

    def __init__(self, column: pa.ChunkedArray, rows: np.ndarray) -> None:
        ends = np.cumsum([len(chunk) for chunk in column.chunks])
        self.chunk = np.searchsorted(ends, rows, side="right")  # the chunk each chosen row is in
        local = rows - np.r_[0, ends[:-1]][self.chunk]
        self.values = [chunk.values.to_numpy(zero_copy_only=False) for chunk in column.chunks]
        offsets = [chunk.offsets.to_numpy() for chunk in column.chunks]
        self.start = np.empty(len(rows), np.int64)
        lengths = np.empty(len(rows), np.int64)
        for c, offs in enumerate(offsets):
            at = self.chunk == c
            self.start[at], lengths[at] = offs[local[at]], offs[local[at] + 1] - offs[local[at]]
        self.dim = int(lengths[0]) if len(rows) else 0
        if not (lengths == self.dim).all():
            raise ValueError(f"frame_features vectors differ in length ({sorted(set(lengths.tolist()))})")

    def matrix(self, lo: int, hi: int) -> np.ndarray:
        """Chosen rows lo..hi-1 as one (hi - lo, dim) array (a copy)."""
        chunks, starts = self.chunk[lo:hi], self.start[lo:hi]
        if (chunks == chunks[0]).all():
            return self.values[chunks[0]][starts[:, None] + np.arange(self.dim)]
        return np.stack([self.values[c][s : s + self.dim] for c, s in zip(chunks, starts, strict=True)])


def build_pairs(
    clips: pa.Table,
    features: pa.Table,
    models: tuple[str, ...] = MODELS,
    pooling: ClipPooling = REFERENCE_POOLING,
) -> tuple[pa.Table, dict[str, int]]:
    """The `clip_pairs` rows of a clips shard and drop counts by reason (clips without features)."""
    by_video = features_by_video(features, models)
    failed = set(
        features.filter(pc.not_equal(features.column("status"), "ok")).column("video_id").to_pylist()
    )
    clips = clips.sort_by([("video_id", "ascending"), ("idx", "ascending")])
    vids = clips.column("video_id").to_pylist()
    starts = clips.column("start_ms").to_numpy()
    ends = clips.column("end_ms").to_numpy()
    keep = np.zeros(len(vids), dtype=bool)
    vectors: list[np.ndarray] = []
    drops: dict[str, int] = {}
    i = 0
    while i < len(vids):
        j = i
        while j < len(vids) and vids[j] == vids[i]:
            j += 1
        feats = by_video.get(vids[i])
        if feats is None:
            reason = "features_failed" if vids[i] in failed else "no_features"
            drops[reason] = drops.get(reason, 0) + (j - i)
        else:
            spans = np.stack([starts[i:j], ends[i:j]], axis=1)
            vectors.append(pool_clips(feats.rows, spans, models, pooling))
            keep[i:j] = True
        i = j
    kept = clips.filter(pa.array(keep))
    dim = sum(next(iter(by_video.values())).rows[m].shape[1] for m in models) if by_video else 0
    matrix = np.concatenate(vectors).astype(np.float16) if vectors else np.zeros((0, dim), np.float16)
    vector_col = pa.ListArray.from_arrays(
        pa.array(np.arange(len(matrix) + 1, dtype=np.int32) * dim),
        pa.array(matrix.reshape(-1)),
    )
    table = pa.table(
        {
            "clip_id": kept.column("clip_id"),
            "video_id": kept.column("video_id"),
            "task_id": kept.column("task_id")
            if "task_id" in kept.column_names
            else pa.nulls(kept.num_rows, pa.string()),
            "idx": kept.column("idx"),
            "start_ms": kept.column("start_ms"),
            "end_ms": kept.column("end_ms"),
            "text": kept.column("text"),
            "vector": vector_col,
        }
    )
    return table, drops
