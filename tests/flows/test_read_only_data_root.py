"""A read-only data root (a shared mount, a snapshot): the reading commands answer without writing into it,
and the commands that must write there say so in one line (exit 2), never with a traceback.

The root is a real read-only tmpfs (skipped where mounting is not allowed), as in
tests/storage/test_data_root_problems.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.catalog import CatalogError, query, refresh, stats
from storage.layout import DataRoot, DataRootProblem
from storage.shards import write_shard
from tasks.evaluation.embedder import CheckpointRef
from tasks.evaluation.results import record
from tasks.evaluation.scoring import Scores
from tests.storage.catalog_data import build_root
from tests.storage.test_shards import clips_table
from tests.storage.tmpfs import tmpfs

HOWTO = str(Path(sys.executable).with_name("howto"))


@pytest.fixture()
def mount(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs the test fills and then remounts read-only (`_read_only`)."""
    with tmpfs(tmp_path / "mnt", "size=32m") as where:
        yield where


def _read_only(where: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True, capture_output=True)
    with pytest.raises(OSError):
        (where / "probe").write_text("x")


def _files(root: DataRoot) -> dict[str, tuple[int, int]]:
    out = {}
    for folder, _dirs, names in os.walk(root.url):
        for name in names:
            st = os.stat(os.path.join(folder, name))
            out[os.path.join(folder, name)] = (st.st_size, st.st_mtime_ns)
    return out


def _howto(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HOWTO, *args], capture_output=True, text=True, timeout=300)


def test_query_and_stats_answer_on_a_read_only_root_without_a_catalog(mount: Path) -> None:
    root = build_root(mount)
    os.remove(root.catalog_path())
    _read_only(mount)
    before = _files(root)
    assert query("SELECT count(*) FROM clips", root).rows == [(6,)]
    assert stats(root)["videos"]["probed"] == 2
    assert _files(root) == before


def test_a_stale_catalog_on_a_read_only_root_is_not_used(mount: Path) -> None:
    root = build_root(mount)
    write_shard(root, "clips", 5, clips_table(["5" * 11] * 4), config_hash="h", code_version="x", rows_in=4)
    _read_only(mount)
    assert query("SELECT count(*) FROM clips", root).rows == [(10,)]


def test_refresh_of_a_read_only_root_is_refused_in_one_line(mount: Path) -> None:
    root = build_root(mount)
    _read_only(mount)
    with pytest.raises(CatalogError, match="not writable"):
        refresh(root)
    out = _howto("catalog", "refresh", "--data-root", root.url)
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert (
        lines[0].startswith("error: catalog not rebuilt")
        and root.url in lines[0]
        and "not writable" in lines[0]
    )


def test_cli_query_and_stats_on_a_read_only_root(mount: Path) -> None:
    root = build_root(mount)
    os.remove(root.catalog_path())
    _read_only(mount)
    out = _howto("query", "--data-root", root.url, "--format", "csv", "SELECT count(*) AS n FROM clips")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["n", "6"]
    out = _howto("stats", "--data-root", root.url, "--json")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert '"probed": 2' in out.stdout


def test_an_evaluation_on_a_read_only_root_is_refused_before_scoring(mount: Path) -> None:
    root = build_root(mount)
    _read_only(mount)
    scored = []

    def compute() -> Scores:
        scored.append(1)
        raise AssertionError("scored on a root that cannot keep the result")

    with pytest.raises(DataRootProblem, match="not writable"):
        record(
            root, CheckpointRef("/nowhere/epoch-1.pt", "run-x"), "heldout", "heldout-0.1", "src", {}, compute
        )
    assert scored == []


def test_report_numbers_on_a_read_only_root(mount: Path) -> None:
    """The report reads its numbers through queries, which bring the catalog up to date themselves: nothing
    is written into a read-only root (the report's own files go to --out)."""
    from tasks.report.numbers import collect

    root = build_root(mount)
    _read_only(mount)
    numbers = collect(root)
    assert numbers.clips == 6


def test_a_query_on_a_read_only_root_spills_outside_it(mount: Path) -> None:
    """DuckDB spills a query too big for memory into its temp folder: beside the catalog normally, in the
    system's temp space when the root is read-only (a catalog there that is current is still used)."""
    from storage.catalog import spill_directory

    root = build_root(mount)
    refresh(root)
    assert spill_directory(root.catalog_path()) == root.catalog_path() + ".tmp"
    _read_only(mount)
    spill = spill_directory(root.catalog_path())
    assert not spill.startswith(str(mount)) and spill.startswith(tempfile.gettempdir())
    assert query("SELECT count(*) FROM clips", root).rows == [(6,)]
