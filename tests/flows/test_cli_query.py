"""`howto query` / `stats` / `catalog refresh`: refused or failing commands print one line, exit 2,
and write nothing."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from typer.testing import CliRunner

import storage.catalog as catalog
from flows.cli import app
from flows.cli_query import OutputFormat, query_command
from storage.layout import DataRoot
from tests.storage.catalog_data import build_root

runner = CliRunner()


def _howto(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "howto"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120)


@pytest.fixture()
def root(tmp_path: Path) -> DataRoot:
    return build_root(tmp_path)


def _one_line_exit_2(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in out.stderr
    return lines[0]


def test_explain_analyze_copy_exits_2_and_writes_nothing(root: DataRoot, tmp_path: Path) -> None:
    target = tmp_path / "x.csv"
    out = _howto("query", f"EXPLAIN ANALYZE COPY (SELECT 1) TO '{target}'", "--data-root", root.url)
    assert "read-only" in _one_line_exit_2(out)
    assert not target.exists()


def test_read_text_outside_root_exits_2(root: DataRoot) -> None:
    out = _howto("query", "SELECT * FROM read_text('/etc/hostname')", "--data-root", root.url)
    assert "Permission Error" in _one_line_exit_2(out)


def test_multiple_statements_exit_2_and_write_nothing(root: DataRoot, tmp_path: Path) -> None:
    target = tmp_path / "y.csv"
    out = _howto("query", f"SELECT 1; COPY (SELECT 1) TO '{target}'", "--data-root", root.url)
    _one_line_exit_2(out)
    assert not target.exists()


def test_query_over_views_still_works(root: DataRoot) -> None:
    out = _howto(
        "query",
        "SELECT count(*) AS n FROM video_catalog WHERE keep",
        "--data-root",
        root.url,
        "--format",
        "csv",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["n", "1"]
    raw = subprocess.run(  # bytes, as a shell's $(...) gets them (text=True turns \r\n into \n)
        [str(Path(sys.executable).parent / "howto"), "query", "SELECT 1 AS n", "--data-root", root.url,
         "--format", "csv"],
        capture_output=True, timeout=120,
    )  # fmt: skip
    assert raw.stdout == b"n\n1\n"  # Unix lines: no \r left on the last field


def test_stats_with_a_skipped_view_exits_2(root: DataRoot, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_clips(r: DataRoot, dataset: str) -> list[str]:
        if dataset == "clips":
            raise OSError("unreadable")
        return []

    monkeypatch.setattr(catalog, "shard_files", no_clips)
    result = runner.invoke(app, ["stats", "--data-root", root.url])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")


def test_catalog_refresh_failure_exits_2_and_keeps_catalog(
    root: DataRoot, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = Path(root.catalog_path()).read_bytes()
    monkeypatch.setattr(catalog, "VIDEO_CATALOG_SQL", "CREATE VIEW video_catalog AS SELECT * FROM nosuch")
    result = runner.invoke(app, ["catalog", "refresh", "--data-root", root.url])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: catalog not rebuilt") and "Traceback" not in result.output
    assert Path(root.catalog_path()).read_bytes() == before


def test_json_output_is_strict_json_and_csv_cells_are_not_python_reprs(root: DataRoot) -> None:
    """`--format json` printed Python's NaN and a BLOB's repr (b'\\x00'), which no strict JSON parser reads;
    `--format csv` wrote lists as ['a', 'b']."""
    import csv
    import io
    import json

    sql = (
        "SELECT 'nan'::DOUBLE AS nan, 'inf'::DOUBLE AS inf, 2.5 AS x, '\\x00\\xff'::BLOB AS b, "
        "INTERVAL 90 SECOND AS i, DATE '2020-01-02' AS d, TIMESTAMP '2020-01-02 03:04:05' AS t, "
        "['a', 'é'] AS l, {'k': 1.5::DECIMAL(4,2)} AS s FROM clips LIMIT 1"
    )
    result = runner.invoke(app, ["query", sql, "--format", "json", "--data-root", root.url])
    assert result.exit_code == 0, result.output

    def refuse(constant: str) -> None:
        raise ValueError(constant)

    (row,) = json.loads(result.stdout, parse_constant=refuse)
    assert row == {
        "nan": None, "inf": None, "x": 2.5, "b": "00ff", "i": 90.0, "d": "2020-01-02",
        "t": "2020-01-02T03:04:05", "l": ["a", "é"], "s": {"k": 1.5},
    }  # fmt: skip
    result = runner.invoke(app, ["query", sql, "--format", "csv", "--data-root", root.url])
    header, values = list(csv.reader(io.StringIO(result.stdout)))
    cells = dict(zip(header, values, strict=True))
    assert (
        json.loads(cells["l"]) == ["a", "é"] and json.loads(cells["s"]) == {"k": 1.5} and cells["b"] == "00ff"
    )


def test_a_table_in_a_pipe_keeps_every_cell_whole(root: DataRoot) -> None:
    """Rich takes 80 columns where stdout is no terminal, and cut wider cells to `crawl…`: the table printed
    into a pipe or a file is as wide as its cells instead."""
    out = _howto("query", "SELECT repeat('x', 120) AS long_value, 'the end' AS t", "--data-root", root.url)
    assert out.returncode == 0, out.stderr
    assert "x" * 120 in out.stdout and "the end" in out.stdout and "…" not in out.stdout


def test_a_table_in_a_pipe_keeps_wide_characters_whole(root: DataRoot) -> None:
    """The width was counted in characters, and a CJK character or an emoji takes two terminal cells: unicode
    titles were cut short (`如何制作…`) in a pipe or a file all the same."""
    title = "如何制作美味的红烧肉和米饭以及其他中国菜肴的详细步骤说明"
    emoji = "🎉" * 30
    out = _howto("query", f"SELECT '{title}' AS title, '{emoji}' AS e, 'Füße' AS f", "--data-root", root.url)
    assert out.returncode == 0, out.stderr
    assert title in out.stdout and emoji in out.stdout and "Füße" in out.stdout and "…" not in out.stdout


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_csv_and_json_rows_are_written_as_they_come_not_held_all_at_once(root: DataRoot, fmt: str) -> None:
    """All rows were fetched into one Python list before the first was printed: `SELECT * FROM clips` of a
    HowTo100M-sized root (136M rows, ~0.7 KB each) filled the memory until the process was killed."""
    sql = "SELECT range AS i FROM range(100000)"  # ~8 MB as one list of tuples; one batch ~1 MB
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        tracemalloc.start()
        try:
            query_command(sql, data_root=root.url, fmt=OutputFormat(fmt))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 4 * 2**20, f"{peak / 2**20:.1f} MiB"


def test_a_table_too_long_to_read_is_refused_in_one_line(root: DataRoot) -> None:
    """The default format drew every row: a bare `SELECT * FROM clips` of a large root filled the memory."""
    out = _howto("query", "SELECT * FROM range(100001)", "--data-root", root.url)
    line = _one_line_exit_2(out)
    assert "more than 100,000 rows" in line and "--format csv" in line
    out = _howto("query", "SELECT * FROM range(100001)", "--data-root", root.url, "--format", "csv")
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 100002


# An ordered aggregate over 3M strings: DuckDB holds them all in memory, past 32 MB, one row out.
BIG_SORT = "SELECT list(s ORDER BY s)[1] AS first FROM (SELECT md5(i::varchar) s FROM range(3000000) t(i))"


def test_memory_and_spill_caps_are_options_the_query_runs_under(root: DataRoot) -> None:
    """The sandbox locks DuckDB's settings (a query cannot SET memory_limit), so the caps are options: they
    reach the query's connection, a query past the memory cap fails in one line that names the options
    (not DuckDB's advice to SET them), and the same query runs with room to spare."""
    settings = "SELECT current_setting('memory_limit') m, current_setting('max_temp_directory_size') s"
    out = runner.invoke(app, ["query", settings, "--data-root", root.url, "--format", "json",
                              "--memory-limit", "100MB", "--max-spill", "2GiB"])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert '"m": "95.3 MiB"' in out.stdout and '"s": "2.0 GiB"' in out.stdout, out.stdout
    refused = runner.invoke(app, ["query", "SET memory_limit = '64GB'", "--data-root", root.url])
    assert refused.exit_code == 2 and "read-only" in refused.stderr, refused.output

    small = _howto("query", BIG_SORT, "--data-root", root.url, "--format", "csv", "--memory-limit", "32MB")
    line = _one_line_exit_2(small)
    assert "Out of Memory" in line and "--memory-limit SIZE (now 32MB)" in line and "SET " not in line
    roomy = _howto("query", BIG_SORT, "--data-root", root.url, "--format", "csv", "--memory-limit", "1GB")
    assert roomy.returncode == 0, roomy.stderr
    assert roomy.stdout.split() == ["first", "0000023f507999464aa2b78875b7e5d6"]  # the least md5 of them


@pytest.mark.parametrize(
    "options, problem",
    [
        (["--memory-limit", "lots"], "--memory-limit 'lots': not a size; give one such as 4GB"),
        (["--memory-limit", "8MB"], "--memory-limit '8MB': at least 32MB"),
        (["--max-spill", "-1GB"], "--max-spill '-1GB': not a size"),
    ],
)
def test_bad_caps_are_refused_in_one_line(root: DataRoot, options: list[str], problem: str) -> None:
    out = runner.invoke(app, ["query", "SELECT 1", "--data-root", root.url, *options])
    assert out.exit_code == 2 and problem in out.stderr, out.output
    assert len(out.stderr.strip().splitlines()) == 1
