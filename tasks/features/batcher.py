"""Batches across videos: decoded rows of many videos gathered into fixed-size batches per model and input
shape, and each batch's output handed back to the videos it came from.

A GPU needs big batches to reach its ceiling, and one video at 1 fps yields a few frames at a time; with
several decoders feeding one batcher the batch fills from whatever videos are in flight. Rows of different
frame sizes (a 4:3 and a 16:9 video) never share a batch. Pure logic: no decoding, no encoding.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from models.frame_rows import Rows, concat_rows

ShapeKey = tuple[str, tuple[int, ...]]


@dataclass(frozen=True)
class RowSpan:
    """`count` consecutive rows of one video's `model` rows, starting at its row `first_row`."""

    video_id: str
    first_row: int
    count: int


@dataclass(frozen=True)
class Batch:
    """One model's input batch and, in order, the video rows it holds."""

    model: str
    rows: Rows  # numpy on the host, or a tensor on the device (decode_device.py)
    spans: tuple[RowSpan, ...]

    def split(self, vectors: np.ndarray) -> Iterator[tuple[RowSpan, np.ndarray]]:
        """The batch's output rows cut back into the spans they belong to."""
        start = 0
        for span in self.spans:
            yield span, vectors[start : start + span.count]
            start += span.count


@dataclass
class _Group:
    pieces: list[tuple[RowSpan, Rows]] = field(default_factory=list)
    rows: int = 0


class CrossVideoBatcher:
    """Collect rows per (model, input shape); hand out full batches, and partial ones on `flush`."""

    def __init__(self, batch_sizes: dict[str, int]) -> None:
        self.batch_sizes = batch_sizes
        self._groups: dict[ShapeKey, _Group] = {}

    def add(self, video_id: str, model: str, first_row: int, rows: Rows) -> None:
        """Queue a video's decoded rows `first_row .. first_row + len(rows) - 1` of `model`."""
        if len(rows):
            group = self._groups.setdefault((model, tuple(rows.shape[1:])), _Group())
            group.pieces.append((RowSpan(video_id, first_row, len(rows)), rows))
            group.rows += len(rows)

    def drop(self, video_id: str) -> None:
        """Forget a video's waiting rows (it failed: it is reported without rows)."""
        for group in self._groups.values():
            kept = [(s, r) for s, r in group.pieces if s.video_id != video_id]
            group.pieces, group.rows = kept, sum(s.count for s, _ in kept)

    @property
    def waiting(self) -> int:
        """Rows queued and not yet handed out."""
        return sum(g.rows for g in self._groups.values())

    def full(self) -> Iterator[Batch]:
        """Every full batch that can be made now."""
        for (model, _), group in self._groups.items():
            while group.rows >= self.batch_sizes[model]:
                yield self._take(model, group, self.batch_sizes[model])

    def flush(self) -> Iterator[Batch]:
        """Everything queued, in full batches and then one partial batch per group."""
        yield from self.full()
        for (model, _), group in self._groups.items():
            if group.rows:
                yield self._take(model, group, group.rows)
        self._groups = {}

    @staticmethod
    def _take(model: str, group: _Group, size: int) -> Batch:
        spans: list[RowSpan] = []
        arrays: list[Rows] = []
        need = size
        while need:
            span, rows = group.pieces[0]
            if span.count <= need:
                group.pieces.pop(0)
                spans.append(span)
                arrays.append(rows)
                need -= span.count
            else:  # split the piece: the head goes now, the tail waits for the next batch
                spans.append(RowSpan(span.video_id, span.first_row, need))
                arrays.append(rows[:need])
                group.pieces[0] = (
                    RowSpan(span.video_id, span.first_row + need, span.count - need),
                    rows[need:],
                )
                need = 0
        group.rows -= size
        return Batch(model, concat_rows(arrays), tuple(spans))
