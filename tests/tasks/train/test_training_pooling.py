"""Clip pooling over frame features, the held-out split and video-grouped batches."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tasks.train.data import group_batches
from tasks.train.pooling import build_pairs, features_by_video, pool_clips, span_rows
from tasks.train.split import is_heldout


def test_span_rows_follow_howto100m() -> None:
    assert span_rows(2500, 4100, 1.0, 10) == (2, 5)  # int(2.5) .. int(4.1) + 1
    assert span_rows(2500, 4100, 1.5, 10) == (3, 7)  # int(3.75) .. int(6.15) + 1
    assert span_rows(20_000, 21_000, 1.0, 10) == (9, 10)  # past the end: the last row still pools


def test_pool_clips_max_pools_then_l2_per_model() -> None:
    rows2d = np.array([[1, 0], [0, 3], [2, 1], [0, 0]], dtype=np.float16)
    rows3d = np.array([[0, 1], [5, 0], [0, 0], [1, 1], [1, 1], [1, 1]], dtype=np.float16)
    out = pool_clips({"resnet152": rows2d, "resnext101": rows3d}, np.array([[0, 1500]]))
    # 2D rows 0..2 -> max (1, 3); 3D rows int(0)=0 .. int(2.25)+1=3 -> max (5, 1); each L2-normalised.
    expected = np.r_[np.array([1, 3]) / np.sqrt(10), np.array([5, 1]) / np.sqrt(26)]
    assert out.shape == (1, 4)
    assert np.allclose(out[0], expected, atol=1e-3)


def _features(rows: list[tuple[str, str, int, list[float], str]]) -> pa.Table:
    return pa.table(
        {
            "video_id": [r[0] for r in rows],
            "model": [r[1] for r in rows],
            "idx": pa.array([r[2] for r in rows], pa.int32()),
            "t_start_ms": [0] * len(rows),
            "t_end_ms": [0] * len(rows),
            "vector": pa.array([r[3] for r in rows], pa.list_(pa.float16())),
            "random_weights": [True] * len(rows),
            "status": [r[4] for r in rows],
            "error": [None] * len(rows),
        }
    )


def test_build_pairs_keeps_clips_with_features_and_counts_drops() -> None:
    feats = _features(
        [
            ("a", "resnet152", 0, [1.0, 0.0], "ok"),
            ("a", "resnet152", 1, [0.0, 1.0], "ok"),
            ("a", "resnext101", 0, [1.0, 1.0], "ok"),
            ("b", "resnet152", 0, [1.0, 0.0], "ok"),
            ("c", "resnet152", 0, [0.0, 0.0], "error"),
        ]
    )
    clips = pa.table(
        {
            "clip_id": ["a_0", "a_1", "b_0", "c_0", "d_0"],
            "video_id": ["a", "a", "b", "c", "d"],
            "task_id": ["t"] * 5,
            "idx": pa.array([0, 1, 0, 0, 0], pa.int32()),
            "start_ms": [0, 1000, 0, 0, 0],
            "end_ms": [900, 1900, 900, 900, 900],
            "text": ["x", "y", "z", "w", "v"],
        }
    )
    table, drops = build_pairs(clips, feats)
    assert table.column("clip_id").to_pylist() == ["a_0", "a_1"]
    # b lacks the 3D model, c's extraction failed, d has no features at all
    assert drops == {"no_features": 2, "features_failed": 1}
    vec = np.asarray(table.column("vector")[1].as_py(), dtype=np.float32)
    assert np.allclose(vec, [0, 1, 1 / np.sqrt(2), 1 / np.sqrt(2)], atol=1e-3)


def test_split_is_stable_and_near_the_fraction() -> None:
    ids = [f"vid{i}" for i in range(2000)]
    held = [v for v in ids if is_heldout(v, 0.1)]
    assert 150 < len(held) < 250
    assert held == [v for v in ids if is_heldout(v, 0.1)]
    # Raising the fraction only adds videos to the held-out side.
    assert set(held) <= {v for v in ids if is_heldout(v, 0.2)}


def test_group_batches_keep_videos_whole_and_cap_clips() -> None:
    video_ids = np.array([f"v{i % 10}" for i in range(200)], dtype=object)  # 20 clips per video
    batches = group_batches(video_ids, np.random.default_rng(0), videos_per_batch=4, clips_per_video=8)
    assert [len({video_ids[r] for r in b}) for b in batches] == [4, 4, 2]
    assert all(len(b) == 8 * len({video_ids[r] for r in b}) for b in batches)
    seen = [video_ids[b[0]] for b in batches]
    assert len({v for b in batches for v in video_ids[b]}) == 10 and len(seen) == 3
    again = group_batches(video_ids, np.random.default_rng(0), videos_per_batch=4, clips_per_video=8)
    assert all((x == y).all() for x, y in zip(batches, again, strict=True))


def _reference_groups(table: pa.Table) -> dict[str, dict[str, np.ndarray]]:
    """features_by_video's answer computed row by row: ok rows, per video and model, in idx order."""
    groups: dict[str, dict[str, list[tuple[int, list[float]]]]] = {}
    for row in table.to_pylist():
        if row["status"] == "ok":
            groups.setdefault(row["video_id"], {}).setdefault(row["model"], []).append(
                (row["idx"], row["vector"])
            )
    return {
        vid: {m: np.array([v for _, v in sorted(rows)], np.float16) for m, rows in models.items()}
        for vid, models in groups.items()
        if set(models) == {"resnet152", "resnext101"}
    }


def test_features_by_video_reads_rows_in_place_across_chunks_in_any_order() -> None:
    # A shard read back comes as one chunk per row group; a video's rows may sit in two, in any order,
    # beside failed rows whose vectors are null or empty, and a chunk may be a slice of a larger array
    # (its offsets not starting at 0): here, chunks of 11 rows sliced from one table.
    rng = np.random.default_rng(0)
    rows: list[tuple[str, str, int, list[float] | None, str]] = []
    for v, (n2, n3) in enumerate([(5, 7), (3, 4), (6, 9), (2, 3)]):
        for model, n in (("resnet152", n2), ("resnext101", n3)):
            rows += [
                (f"video{v:03d}", model, i, rng.standard_normal(6).round(3).tolist(), "ok") for i in range(n)
            ]
    rows += [("video900", "resnet152", 0, None, "error"), ("video001", "resnext101", 9, [], "error")]
    rows += [("video002", "resnext101", 40, rng.standard_normal(6).tolist(), "error")]  # a stale failed row
    rows += [("video950", "resnet152", i, rng.standard_normal(6).tolist(), "ok") for i in range(3)]  # no 3D
    order = rng.permutation(len(rows))
    whole = _features([rows[i] for i in order])  # type: ignore[misc]
    sliced = pa.Table.from_batches(
        [b for start in range(0, whole.num_rows, 11) for b in whole.slice(start, 11).to_batches()]
    )
    for table in (whole, sliced):
        got = features_by_video(table)
        want = _reference_groups(table)
        assert sorted(got) == sorted(want) == ["video000", "video001", "video002", "video003"]
        for vid, models in want.items():
            for model, matrix in models.items():
                assert got[vid].rows[model].dtype == np.float16
                np.testing.assert_array_equal(got[vid].rows[model], matrix)
    assert sliced.column("vector").num_chunks > 1


def test_features_by_video_refuses_vectors_of_two_lengths() -> None:
    table = _features(
        [("v", "resnet152", 0, [1.0, 2.0], "ok"), ("v", "resnext101", 0, [1.0, 2.0, 3.0], "ok")]
    )
    with pytest.raises(ValueError, match="differ in length"):
        features_by_video(table)
