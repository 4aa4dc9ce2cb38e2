"""Catalog rebuilds: views over exactly the marked shard files, an atomic swap that a failure never
damages, one unreadable dataset skipped without costing the others their views, and one writer at a
time, which cleans up after a writer that was killed."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import storage.catalog as catalog
from storage.catalog import CatalogError, QueryError, _reader, query, refresh, stats
from storage.layout import DataRoot
from storage.schemas import SCHEMAS
from storage.shards import shard_files, write_shard
from tests.storage.catalog_data import build_root
from tests.storage.test_shards import clips_table


@pytest.fixture()
def root(tmp_path: Path) -> DataRoot:
    return build_root(tmp_path)


def _clips_dir(root: DataRoot) -> Path:
    return Path(root.dataset_dir("clips", SCHEMAS["clips"].version))


def test_view_reads_exactly_the_listed_files(root: DataRoot, monkeypatch: pytest.MonkeyPatch) -> None:
    def without_shard_1(r: DataRoot, dataset: str) -> list[str]:
        return [f for f in shard_files(r, dataset) if not f.endswith("part-00001.parquet")]

    monkeypatch.setattr(catalog, "shard_files", without_shard_1)
    refresh(root)
    assert query("SELECT DISTINCT video_id FROM clips ORDER BY 1", root).rows == [("0" * 11,), ("2" * 11,)]
    with _reader(root) as con:
        (sql,) = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'clips'").fetchone() or ("",)
    assert "part-00000.parquet" in sql and "*" not in sql.split("FROM", 1)[1]


def test_orphan_shard_without_marker_never_shows_up(root: DataRoot) -> None:
    pq.write_table(clips_table(["9" * 11] * 5), _clips_dir(root) / "part-00007.parquet")
    refresh(root)
    assert query("SELECT count(*) FROM clips WHERE video_id = '99999999999'", root).rows == [(0,)]
    assert query("SELECT count(*) FROM clips", root).rows == [(6,)]


def test_empty_dataset_has_typed_view_and_refresh_writes_nothing_in_it(root: DataRoot) -> None:
    result = query("SELECT * FROM frame_features", root)
    assert result.rows == []
    assert result.columns == SCHEMAS["frame_features"].schema.names
    assert not Path(root.url, "frame_features").exists()


def test_broken_view_is_logged_and_skipped(
    root: DataRoot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A shard cut short after it was listed: its footer is gone, so DuckDB cannot read it.
    truncated = _clips_dir(root) / "part-00009.parquet"
    shutil.copy(_clips_dir(root) / "part-00000.parquet", truncated)
    with truncated.open("r+b") as handle:
        handle.truncate(truncated.stat().st_size // 2)

    def listing(r: DataRoot, dataset: str) -> list[str]:
        if dataset == "tasks":
            raise OSError("listing failed")
        extra = [str(truncated)] if dataset == "clips" else []
        return shard_files(r, dataset) + extra

    monkeypatch.setattr(catalog, "shard_files", listing)
    with caplog.at_level(logging.WARNING, logger="storage.catalog"):
        refresh(root)
    skipped = [r.getMessage() for r in caplog.records if "skipping view" in r.getMessage()]
    assert len(skipped) == 2
    assert any("clips" in m for m in skipped) and any("tasks" in m for m in skipped)
    with pytest.raises(QueryError, match="clips"):
        query("SELECT count(*) FROM clips", root)
    assert query("SELECT count(*) FROM videos", root).rows == [(2,)]
    assert query("SELECT count(*) FROM video_catalog WHERE keep", root).rows == [(1,)]
    with pytest.raises(QueryError):
        stats(root)


def _snapshot(root: DataRoot) -> bytes:
    return Path(root.catalog_path()).read_bytes()


def _leftovers(root: DataRoot) -> list[str]:
    return [p.name for p in Path(root.url).iterdir() if p.name.startswith(".tmp-")]


def test_failed_build_keeps_old_catalog(root: DataRoot, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _snapshot(root)
    monkeypatch.setattr(catalog, "VIDEO_CATALOG_SQL", "CREATE VIEW video_catalog AS SELECT * FROM nosuch")
    # New data the failed build would have shown: the old catalog must keep showing the old six rows.
    write_shard(root, "clips", 5, clips_table(["z" * 11]), config_hash="h", code_version="x", rows_in=1)
    with pytest.raises(CatalogError, match="previous one is kept"):
        refresh(root)
    assert _snapshot(root) == before
    assert _leftovers(root) == []
    assert query("SELECT count(*) FROM clips", root).rows == [(6,)]


def test_full_disk_keeps_old_catalog_never_zero_bytes(
    root: DataRoot, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _snapshot(root)

    def full_disk(path: str, r: DataRoot) -> None:
        Path(path).write_bytes(b"")  # what a write cut off by a full disk leaves behind
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(catalog, "_build", full_disk)
    with pytest.raises(CatalogError, match="No space left"):
        refresh(root)
    assert _snapshot(root) == before and len(before) > 0
    assert _leftovers(root) == []
    assert query("SELECT count(*) FROM clips", root).rows == [(6,)]


def test_refresh_swaps_in_new_views(root: DataRoot) -> None:
    write_shard(root, "clips", 9, clips_table(["z" * 11]), config_hash="h", code_version="x", rows_in=1)
    refresh(root)
    assert query("SELECT count(*) FROM clips", root).rows == [(7,)]
    assert _leftovers(root) == []
    assert not Path(root.catalog_path() + ".wal").exists()


# A writer that stops inside its build, holding its temp catalog and WAL, until it is killed.
STUCK_WRITER = """
import sys, time
from pathlib import Path
import storage.catalog as catalog

def stuck(tmp, root):
    Path(tmp).write_bytes(b"half a catalog")
    Path(tmp + ".wal").write_bytes(b"wal")
    print("building", flush=True)
    time.sleep(120)

catalog._build = stuck
catalog.refresh(sys.argv[1])
"""


@contextmanager
def _stuck_writer(root: DataRoot) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", STUCK_WRITER, root.url],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "building"
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_a_killed_writers_temp_files_are_removed_by_the_next_refresh(root: DataRoot) -> None:
    """SIGKILL mid-build skips every cleanup: the next refresh removes what the dead writer left."""
    with _stuck_writer(root):
        assert len(_leftovers(root)) == 2
    refresh(root)
    assert _leftovers(root) == []
    assert query("SELECT count(*) FROM clips", root).rows == [(6,)]


def test_refresh_waits_for_a_live_writer_and_leaves_its_files_alone(root: DataRoot) -> None:
    finished = threading.Event()
    with _stuck_writer(root):
        waiting = threading.Thread(target=lambda: (refresh(root), finished.set()))
        waiting.start()
        waiting.join(timeout=1.0)
        assert not finished.is_set(), "refresh ran beside a writer that was still building"
        assert len(_leftovers(root)) == 2  # the live writer's temp files are untouched
    waiting.join(timeout=60)
    assert finished.is_set()
    assert _leftovers(root) == []
