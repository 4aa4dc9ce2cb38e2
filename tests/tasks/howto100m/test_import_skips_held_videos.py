"""An import into a root that already holds some of the release's videos (crawled, or planned by a crawl
under way) skips them, as a crawl skips the videos an import holds: no video has two
`videos` rows or two sets of clips, so no count doubles."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

import tasks.howto100m.importer as importer
from storage.catalog import query
from storage.layout import DataRoot
from storage.schemas import get_schema
from storage.shards import list_markers, write_shard
from tasks.howto100m.import_stage import import_howto100m
from tasks.search.plans import append_video_plans, next_video_shard
from tests.tasks.howto100m.conftest import import_config
from tests.tasks.howto100m.release_files import VIDEO_A, VIDEO_B, VIDEO_C, VIDEO_D, Release, write_release


def _crawled(root: DataRoot, video_ids: list[str]) -> None:
    """A crawl's `videos` shard 0 holding `video_ids`, kept."""
    schema = get_schema("videos").schema
    rows = [{"video_id": v, "keep": True, "status": "ok", "crawl_id": "crawl-0000"} for v in video_ids]
    table = pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in rows], schema=schema)
    write_shard(root, "videos", 0, table, config_hash="crawl-hash", code_version="t", rows_in=len(rows))


def _rows(root: DataRoot, sql: str) -> list[tuple]:
    return query(sql, root).rows


def test_videos_the_root_holds_are_skipped_and_counted(release: Release, fresh_root: DataRoot) -> None:
    # A (a caption entry) and D (a csv row with none) crawled; C planned by a crawl that has not probed it yet.
    _crawled(fresh_root, [VIDEO_A, VIDEO_D])
    append_video_plans(
        fresh_root, [{"video_id": VIDEO_C}], "crawl-0001", "search", 2, next_video_shard(fresh_root)
    )
    summary = import_howto100m(import_config(release), fresh_root.url)
    assert summary["counts"]["already_in_root"] == 3
    assert summary["videos"] == 1 and summary["shards"] == 1
    # Each video once; only B's clips came from the release (A's crawled row is the one the catalog has).
    assert _rows(fresh_root, "SELECT video_id, count(*) FROM videos GROUP BY 1 ORDER BY 1") == sorted(
        [(VIDEO_A, 1), (VIDEO_B, 1), (VIDEO_D, 1)]
    )
    assert _rows(fresh_root, "SELECT DISTINCT video_id FROM clips") == [(VIDEO_B,)]
    assert _rows(fresh_root, "SELECT DISTINCT video_id FROM frame_features") == [(VIDEO_B,)]
    assert _rows(fresh_root, f"SELECT crawl_id FROM videos WHERE video_id = '{VIDEO_A}'") == [("crawl-0000",)]


def test_a_rerun_skips_the_same_videos_and_writes_nothing(release: Release, fresh_root: DataRoot) -> None:
    _crawled(fresh_root, [VIDEO_A])
    first = import_howto100m(import_config(release), fresh_root.url)
    again = import_howto100m(import_config(release), fresh_root.url)
    assert first["counts"]["already_in_root"] == again["counts"]["already_in_root"] == 1
    assert again["shards"] == first["shards"] == again["shards_cached"] == 2  # B with C, then D
    assert _rows(fresh_root, "SELECT count(*), count(DISTINCT video_id) FROM videos") == [(4, 4)]


def test_a_replace_takes_the_videos_of_the_import_it_replaces(
    release: Release, fresh_root: DataRoot, tmp_path: Path
) -> None:
    import_howto100m(import_config(release), fresh_root.url)
    other = write_release(tmp_path / "other", seed=1)  # other feature files: another batch, the same videos
    replaced = import_howto100m(import_config(other), fresh_root.url, replace=True)
    # The replaced import's videos go at the swap: they are not held, so the new one takes them all.
    assert "already_in_root" not in replaced["counts"] and replaced["videos"] == 4
    assert _rows(fresh_root, "SELECT count(*), count(DISTINCT video_id) FROM videos") == [(4, 4)]
    assert len({m.config.get("import_batch") for m in list_markers(fresh_root, "videos")}) == 1


def test_every_video_held_imports_its_tasks_and_no_video(release: Release, fresh_root: DataRoot) -> None:
    _crawled(fresh_root, [VIDEO_A, VIDEO_B, VIDEO_C, VIDEO_D])
    summary = import_howto100m(import_config(release), fresh_root.url)
    assert (summary["videos"], summary["shards"], summary["counts"]["already_in_root"]) == (0, 0, 4)
    assert _rows(fresh_root, "SELECT count(*), count(DISTINCT video_id) FROM videos") == [(4, 4)]
    assert _rows(fresh_root, "SELECT count(*) FROM tasks") == [(2,)]


def test_a_rerun_after_an_import_that_kept_held_videos_leaves_each_video_once(
    release: Release, fresh_root: DataRoot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An import by a version that did not skip held videos: A twice, in shards [B, A], [C], [D].
    _crawled(fresh_root, [VIDEO_A])
    with monkeypatch.context() as patched:
        patched.setattr(importer, "video_ids_outside", lambda *_args, **_kw: set())
        old = import_howto100m(import_config(release), fresh_root.url)
    assert old["shards"] == 3
    assert _rows(fresh_root, "SELECT count(*), count(DISTINCT video_id) FROM videos") == [(5, 4)]
    # Its rerun makes [B, C], [D]: the third shard would hold D a second time, and goes with its clips.
    again = import_howto100m(import_config(release), fresh_root.url)
    assert (again["shards"], again["stale_shards_removed"]) == (2, 4)  # videos, captions, clips, features
    assert _rows(fresh_root, "SELECT count(*), count(DISTINCT video_id) FROM videos") == [(4, 4)]
    assert _rows(fresh_root, "SELECT count(*), count(DISTINCT clip_id) FROM clips") == [(4, 4)]
    assert _rows(fresh_root, f"SELECT count(*) FROM clips WHERE video_id = '{VIDEO_A}'") == [(0,)]
