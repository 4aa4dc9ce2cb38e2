"""Batches across videos: full fixed-size batches from many videos' rows, split back to the right rows."""

from __future__ import annotations

import numpy as np

from tasks.features.batcher import CrossVideoBatcher, RowSpan


def _rows(video: int, first: int, n: int, width: int = 4) -> np.ndarray:
    """Rows whose first value says (video, row) so every split can be checked."""
    out = np.zeros((n, 2, width), np.int32)
    out[:, 0, 0] = video
    out[:, 0, 1] = np.arange(first, first + n)
    return out


def test_full_batches_mix_videos_and_split_back_exactly() -> None:
    batcher = CrossVideoBatcher({"2d": 4})
    batcher.add("a", "2d", 0, _rows(1, 0, 3))
    assert list(batcher.full()) == []  # 3 rows: not a batch yet
    batcher.add("b", "2d", 0, _rows(2, 0, 6))
    batches = list(batcher.full())
    assert [len(b.rows) for b in batches] == [4, 4] and batcher.waiting == 1
    assert batches[0].spans == (RowSpan("a", 0, 3), RowSpan("b", 0, 1))
    assert batches[1].spans == (RowSpan("b", 1, 4),)
    for batch in batches:
        for span, rows in batch.split(batch.rows):
            assert rows[:, 0, 1].tolist() == list(range(span.first_row, span.first_row + span.count))
            assert set(rows[:, 0, 0].tolist()) == {1 if span.video_id == "a" else 2}
    [tail] = list(batcher.flush())
    assert tail.spans == (RowSpan("b", 5, 1),) and batcher.waiting == 0


def test_frame_sizes_and_models_never_share_a_batch() -> None:
    batcher = CrossVideoBatcher({"2d": 2, "3d": 2})
    batcher.add("wide", "2d", 0, _rows(1, 0, 1, width=4))
    batcher.add("narrow", "2d", 0, _rows(2, 0, 1, width=3))
    batcher.add("wide", "3d", 0, _rows(1, 0, 1, width=4))
    assert list(batcher.full()) == []
    flushed = list(batcher.flush())
    assert sorted((b.model, b.rows.shape[1:], len(b.spans)) for b in flushed) == [
        ("2d", (2, 3), 1),
        ("2d", (2, 4), 1),
        ("3d", (2, 4), 1),
    ]


def test_a_dropped_video_leaves_no_rows_behind() -> None:
    batcher = CrossVideoBatcher({"2d": 3})
    batcher.add("bad", "2d", 0, _rows(1, 0, 2))
    batcher.add("good", "2d", 0, _rows(2, 0, 2))
    batcher.drop("bad")
    assert batcher.waiting == 2
    [batch] = list(batcher.flush())
    assert batch.spans == (RowSpan("good", 0, 2),)
