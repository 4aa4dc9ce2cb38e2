"""`howto import howto100m` on a fabricated release in the published formats: rows, joins, features, reruns."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from storage.catalog import query
from storage.layout import DataRoot
from storage.shards import list_markers, read_dataset
from tasks.howto100m.import_stage import ImportConflict, import_howto100m
from tasks.howto100m.layout import crawled_video_shards
from tasks.train.pooling import build_pairs
from tests.tasks.howto100m.conftest import import_config
from tests.tasks.howto100m.release_files import (
    SHAPES,
    VIDEO_A,
    VIDEO_B,
    VIDEO_C,
    VIDEO_D,
    Release,
)


def _rows(root: DataRoot, sql: str) -> list[tuple]:
    return query(sql, root).rows


def test_row_counts_of_every_dataset(imported: DataRoot) -> None:
    counts = {d: read_dataset(imported, d).count_rows() for d in ("tasks", "videos", "captions", "clips")}
    # 4 videos in the csv (D has no caption entry); clips: 3 + 3 + 1 (A's empty and blank lines skipped)
    assert counts == {"tasks": 2, "videos": 4, "captions": 4, "clips": 7}
    features = dict(
        _rows(imported, "SELECT model, count(*) FROM frame_features WHERE status = 'ok' GROUP BY 1")
    )
    assert features == {
        "resnet152": sum(s[0] for s in SHAPES.values()),
        "resnext101": sum(s[1] for s in SHAPES.values()),
    }
    # videos_per_shard=2: caption.json order (B, A), then C, then the csv's video without captions
    shards = {m.shard: m.rows_out for m in list_markers(imported, "videos")}
    assert shards == {0: 2, 1: 1, 2: 1}
    assert (
        {m.shard for m in list_markers(imported, "clips")}
        == {m.shard for m in list_markers(imported, "frame_features")}
        == {0, 1, 2}
    )


def test_times_round_to_milliseconds_and_texts_are_read_as_the_reference_does(imported: DataRoot) -> None:
    clips = _rows(
        imported,
        f"SELECT idx, start_ms, end_ms, text, text_no_stopwords, n_words FROM clips WHERE video_id = '{VIDEO_A}' ORDER BY idx",
    )
    assert clips == [
        (0, 234, 2300, "hi harrison kevin", "hi harrison kevin", 3),
        (1, 2300, 6900, "nan", "nan", 1),  # a NaN text: str(nan), as the reference's str(sentence)
        (2, 6560, 10000, "set slackline", "set slackline", 2),  # 6.5600000000000005 s, 9.9996 s
    ]
    texts = [
        r[0] for r in _rows(imported, f"SELECT text FROM clips WHERE video_id = '{VIDEO_B}' ORDER BY idx")
    ]
    assert texts == ["slackline", "5.0", "learning walk walk walk"]  # a number where a text should be
    markers = [m for m in list_markers(imported, "videos") if m.shard == 0]
    assert markers[0].extra["caption_source"] == "caption.json"
    assert markers[0].extra["empty_text"] == 2 and markers[0].extra["non_string_text_kept"] == 2


def test_task_join_gives_categories(imported: DataRoot) -> None:
    joined = dict(
        _rows(imported, "SELECT v.video_id, t.category_path[-1] FROM videos v JOIN tasks t USING (task_id)")
    )
    assert joined == {
        VIDEO_A: "Cars & Other Vehicles", VIDEO_B: "Food and Entertaining",
        VIDEO_C: "Cars & Other Vehicles", VIDEO_D: "Cars & Other Vehicles",
    }  # fmt: skip
    tasks = _rows(imported, "SELECT source_id, title, category_path, keep FROM tasks ORDER BY source_id")
    assert tasks == [
        ("25938", "Make a Lemon\u2010Lime Soda, Quickly", ["Drinks", "Food and Entertaining"], True),
        ("52907", 'Fix a "Kick Start" on a Motorcycle', ["Motorcycles", "Cars & Other Vehicles"], True),
    ]
    assert dict(_rows(imported, "SELECT DISTINCT video_id, category FROM clips")) == {
        VIDEO_A: "Cars & Other Vehicles", VIDEO_B: "Food and Entertaining", VIDEO_C: "Cars & Other Vehicles",
    }  # fmt: skip
    ranks = dict(_rows(imported, "SELECT video_id, rank FROM videos"))
    assert ranks == {VIDEO_A: 27, VIDEO_B: 6, VIDEO_C: 99, VIDEO_D: 35}
    catalog = dict(_rows(imported, "SELECT video_id, coalesce(drop_reason, 'kept') FROM video_catalog"))
    assert catalog == {VIDEO_A: "kept", VIDEO_B: "kept", VIDEO_C: "kept", VIDEO_D: "no_captions"}


def test_features_are_stored_as_given_at_their_frame_times(imported: DataRoot, release: Release) -> None:
    table = (
        read_dataset(imported, "frame_features")
        .to_table()
        .sort_by([("video_id", "ascending"), ("model", "ascending"), ("idx", "ascending")])
    )
    rows = [r for r in table.to_pylist() if r["video_id"] == VIDEO_A]
    two_d = np.load(release.features_2d / f"{VIDEO_A}.npy")
    three_d = np.load(release.features_3d / "52907" / f"{VIDEO_A}.npy")
    got_2d = np.array([r["vector"] for r in rows if r["model"] == "resnet152"], dtype=np.float16)
    got_3d = np.array([r["vector"] for r in rows if r["model"] == "resnext101"], dtype=np.float16)
    assert np.array_equal(got_2d, two_d) and np.array_equal(got_3d, three_d)  # bit for bit, no re-normalising
    assert [(r["t_start_ms"], r["t_end_ms"]) for r in rows if r["model"] == "resnet152"][:2] == [
        (0, 1000),
        (1000, 2000),
    ]
    assert [(r["t_start_ms"], r["t_end_ms"]) for r in rows if r["model"] == "resnext101"][:3] == [
        (0, 667),
        (667, 1333),
        (1333, 2000),
    ]
    assert all(not r["random_weights"] for r in rows)
    missing = [r for r in table.to_pylist() if r["video_id"] == VIDEO_D]
    assert [(r["model"], r["status"], r["error"]) for r in missing] == [
        ("resnet152", "failed", "no features file"), ("resnext101", "failed", "no features file"),
    ]  # fmt: skip


def _reference_get_video(two_d: np.ndarray, three_d: np.ndarray, s: float, e: float) -> np.ndarray:
    """HowTo100M's Youtube_DataLoader._get_video for one span, typed again: per model rows int(s*fps) ..
    int(e*fps)+1, max over them, L2-normalise, then concatenate 2D before 3D."""
    out = []
    for rows, fps in ((two_d, 1.0), (three_d, 24.0 / 16.0)):
        block = rows.astype(np.float32)[int(s * fps) : int(e * fps) + 1]
        pooled = block.max(axis=0)
        out.append(pooled / np.linalg.norm(pooled))
    return np.concatenate(out)


def test_pooled_vector_equals_the_reference_max_pool_l2_concat(imported: DataRoot, release: Release) -> None:
    clips = read_dataset(imported, "clips").to_table()
    features = read_dataset(imported, "frame_features").to_table()
    pairs, drops = build_pairs(clips, features)
    assert drops == {} and pairs.num_rows == 7
    row = next(r for r in pairs.to_pylist() if r["clip_id"] == f"{VIDEO_A}_0001")
    assert (row["start_ms"], row["end_ms"]) == (2300, 6900)  # the span [2.3, 6.9] s
    two_d = np.load(release.features_2d / f"{VIDEO_A}.npy")
    three_d = np.load(release.features_3d / "52907" / f"{VIDEO_A}.npy")
    expected = _reference_get_video(two_d, three_d, 2.3, 6.9)
    got = np.asarray(row["vector"], dtype=np.float32)
    assert got.shape == (4096,)
    np.testing.assert_allclose(got, expected, atol=1e-3)  # stored as float16
    assert math.isclose(float(np.linalg.norm(got[:2048])), 1.0, rel_tol=2e-3)


def test_rerun_writes_nothing_and_other_files_need_replace(release: Release, fresh_root: DataRoot) -> None:
    first = import_howto100m(import_config(release), fresh_root.url)
    assert first["shards"] == 3 and first["shards_cached"] == 0 and first["clips"] == 7
    second = import_howto100m(import_config(release), fresh_root.url)
    assert second["shards_cached"] == 3 and second["clips"] == 7
    bigger = import_config(release, videos_per_shard=3)
    with pytest.raises(ImportConflict, match="--replace"):
        import_howto100m(bigger, fresh_root.url)
    third = import_howto100m(bigger, fresh_root.url, replace=True)
    assert third["shards"] == 2 and third["replaced_shards"] > 0
    assert (
        read_dataset(fresh_root, "clips").count_rows() == 7
        and read_dataset(fresh_root, "tasks").count_rows() == 2
    )


def test_captions_and_features_stages_leave_imported_shards_alone(imported: DataRoot) -> None:
    assert [m.shard for m in list_markers(imported, "videos")] == [0, 1, 2]
    assert crawled_video_shards(imported) == []


def test_raw_captions_get_their_stop_words_removed(release: Release, fresh_root: DataRoot, tmp_path) -> None:
    raw = tmp_path / "raw_caption.json"
    raw.write_text(
        json.dumps({VIDEO_C: {"start": [1.0], "end": [2.5], "text": ["and then we cut the wood"]}})
    )
    summary = import_howto100m(
        import_config(release, captions=str(raw), features_2d=None, features_3d=None), fresh_root.url
    )
    assert summary["caption_source"] == "raw_caption.json"
    assert _rows(fresh_root, "SELECT text, text_no_stopwords FROM clips") == [
        ("and then we cut the wood", "cut wood")
    ]
    assert read_dataset(fresh_root, "frame_features").count_rows() == 0
