"""DuckDB catalog views, read-only guard, stats and the `howto query` CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from storage.catalog import QueryError, query, refresh, stats
from storage.layout import DataRoot
from storage.shards import write_shard
from tests.storage.test_shards import clips_table


@pytest.fixture()
def root(tmp_path: Path) -> DataRoot:
    root = DataRoot.from_any(tmp_path / "data")
    for shard in range(3):
        write_shard(
            root,
            "clips",
            shard,
            clips_table([f"{shard}" * 11] * 2),
            config_hash="h",
            code_version="x",
            rows_in=2,
        )
    refresh(root)
    return root


def test_views_see_all_shards(root: DataRoot) -> None:
    assert query("SELECT count(*), count(DISTINCT video_id) FROM clips", root).rows == [(6, 3)]


def test_view_picks_up_new_shard_after_refresh(root: DataRoot) -> None:
    write_shard(root, "clips", 9, clips_table(["z" * 11]), config_hash="h", code_version="x", rows_in=1)
    refresh(root)
    assert query("SELECT count(*) FROM clips", root).rows == [(7,)]


def test_empty_datasets_have_typed_views(root: DataRoot) -> None:
    result = query("SELECT count(*) FROM videos", root)
    assert result.rows == [(0,)]
    assert "duration_s" in query("SELECT * FROM videos", root).columns


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO clips SELECT * FROM clips",
        "COPY (SELECT 1) TO '/tmp/howto-should-not-exist.csv'",
        "ATTACH '/tmp/howto-other.db' AS other",
        "SELECT 1; DROP VIEW clips",
        "CREATE TABLE t AS SELECT 1",
    ],
)
def test_read_only_guard(root: DataRoot, sql: str) -> None:
    with pytest.raises(QueryError, match="only read-only queries"):
        query(sql, root)
    assert query("SELECT count(*) FROM clips", root).rows == [(6,)]
    assert not Path("/tmp/howto-should-not-exist.csv").exists()


def test_bad_sql_gives_duckdb_message(root: DataRoot) -> None:
    with pytest.raises(QueryError, match="nosuchtable"):
        query("SELECT * FROM nosuchtable", root)


def test_stats_counts(root: DataRoot) -> None:
    summary = stats(root)
    assert summary["clips"]["total"] == 6
    assert summary["clips"]["words"] == 18
    assert summary["top_categories"] == [{"category": "Food and Entertaining", "clips": 6}]


def _howto(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "howto"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120)


def test_cli_query_formats_and_errors(root: DataRoot) -> None:
    out = _howto(
        "query",
        "SELECT video_id, count(*) AS n FROM clips GROUP BY 1 ORDER BY 1",
        "--data-root",
        root.url,
        "--format",
        "json",
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [{"video_id": f"{i}" * 11, "n": 2} for i in range(3)]
    csv_out = _howto("query", "SELECT count(*) AS n FROM clips", "--data-root", root.url, "--format", "csv")
    assert csv_out.stdout.splitlines() == ["n", "6"]
    bad = _howto("query", "SELEC nonsense", "--data-root", root.url)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    refused = _howto("query", "DELETE FROM clips", "--data-root", root.url)
    assert refused.returncode == 2 and "read-only" in refused.stderr


def test_cli_stats_json(root: DataRoot) -> None:
    out = _howto("stats", "--json", "--data-root", root.url)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["clips"]["total"] == 6
