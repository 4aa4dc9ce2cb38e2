"""The catalog answers from the root it is in: a copied or moved root, or one with shards written since the
last refresh, is queried over its own current files, and a catalog that is current is not rebuilt."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from storage.catalog import _reader, query, refresh, stats
from storage.layout import DataRoot
from storage.schemas import SCHEMAS
from storage.shards import write_shard
from tests.storage.catalog_data import build_root
from tests.storage.test_shards import clips_table


def _view_sql(root: DataRoot, view: str) -> str:
    with _reader(root) as con:
        (sql,) = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = ?", [view]).fetchone() or ("",)
    return str(sql)


def test_a_copied_root_is_queried_over_its_own_files(tmp_path: Path) -> None:
    original = build_root(tmp_path)
    copy = DataRoot.from_any(tmp_path / "copy")
    shutil.copytree(original.url, copy.url, symlinks=True)  # what `cp -a root root2` does
    assert query("SELECT count(*) FROM videos", copy).rows == [(2,)]
    assert query("SELECT count(*) FROM clips", copy).rows == [(6,)]
    sql = _view_sql(copy, "clips")
    assert copy.url + "/clips/" in sql and original.url + "/" not in sql
    # The original is untouched, and still answers over its own files.
    assert original.url + "/clips/" in _view_sql(original, "clips")


def test_a_moved_root_is_queried_and_stats_answer(tmp_path: Path) -> None:
    original = build_root(tmp_path)
    moved = DataRoot.from_any(tmp_path / "moved")
    os.rename(original.url, moved.url)
    assert query("SELECT count(*) FROM video_catalog WHERE keep", moved).rows == [(1,)]
    summary = stats(moved)
    assert summary["videos"]["probed"] == 2 and summary["clips"]["total"] == 6


def test_shards_written_after_the_last_refresh_show_in_the_next_query(tmp_path: Path) -> None:
    root = build_root(tmp_path)
    write_shard(root, "clips", 7, clips_table(["7" * 11] * 3), config_hash="h", code_version="x", rows_in=3)
    assert query("SELECT count(*) FROM clips", root).rows == [(9,)]


def test_a_current_catalog_is_not_rebuilt(tmp_path: Path) -> None:
    root = build_root(tmp_path)
    catalog = Path(root.catalog_path())
    before = catalog.stat()
    for _ in range(2):
        assert query("SELECT count(*) FROM clips", root).rows == [(6,)]
    after = catalog.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_catalog_file_that_is_not_one_is_rebuilt(tmp_path: Path) -> None:
    root = build_root(tmp_path)
    Path(root.catalog_path()).write_bytes(b"not a duckdb file")
    assert query("SELECT count(*) FROM clips", root).rows == [(6,)]


def test_a_catalog_built_before_an_upgrade_gains_the_new_datasets_views(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A finished root's catalog, built by a version without a dataset (audio_features came later), matched the
    root's unchanged files and was kept: `SELECT ... FROM audio_features` failed ("does not exist") until a
    stage ran again. A dataset's view changing its columns (a new schema version) is the same case."""
    root = build_root(tmp_path)
    with monkeypatch.context() as older:
        older.delitem(SCHEMAS, "audio_features")  # the code before the upgrade
        refresh(root)
        with _reader(root) as con:
            views = {
                r[0]
                for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
            }
        assert "audio_features" not in views and "clips" in views
    assert query("SELECT count(*) FROM audio_features", root).rows == [(0,)]
    assert query("SELECT count(*) FROM clips", root).rows == [(6,)]
    # And then it is current again: the next query does not rebuild it.
    before = Path(root.catalog_path()).stat().st_ino
    assert query("SELECT count(*) FROM audio_features", root).rows == [(0,)]
    assert Path(root.catalog_path()).stat().st_ino == before
