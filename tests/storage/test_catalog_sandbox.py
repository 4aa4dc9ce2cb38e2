"""`query` escapes: every way out of the read-only catalog is refused, nothing is read or written outside
the dataset folders, and the normal queries still work."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storage.catalog import QueryError, _reader, query, refresh
from storage.layout import DataRoot
from tests.storage.catalog_data import build_root


@pytest.fixture()
def root(tmp_path: Path) -> DataRoot:
    return build_root(tmp_path)


CONTENT = "s3cr3t-content"


@pytest.fixture()
def paths(tmp_path: Path, root: DataRoot) -> dict[str, str]:
    """Files outside the data root to read, and paths (outside and inside it) a write would create."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(f"{CONTENT}\n")
    (outside / "secret.csv").write_text(f"a,b\n{CONTENT},2\n")
    (outside / "secret.json").write_text(f'{{"a": "{CONTENT}"}}\n')
    pq.write_table(pa.table({"a": [CONTENT]}), outside / "secret.parquet")
    return {
        "root": root.url,
        "outside": str(outside),
        "target": str(tmp_path / "written.csv"),
        "inside": f"{root.url}/clips/v1/written.csv",
        "export": str(tmp_path / "exported"),
    }


def _written(paths: dict[str, str]) -> list[str]:
    candidates = [paths["target"], paths["inside"], paths["export"], paths["target"] + ".db"]
    return [p for p in candidates if Path(p).exists()]


ESCAPES = {
    "explain-analyze-copy": "EXPLAIN ANALYZE COPY (SELECT 1) TO '{target}'",
    "explain-analyze-copy-inside-root": "EXPLAIN ANALYZE COPY (SELECT 1) TO '{inside}'",
    "explain-analyze-select": "EXPLAIN ANALYZE SELECT 1",
    "explain-options-analyze": "EXPLAIN (ANALYZE) SELECT 1",
    "explain-comment-analyze-copy": "EXPLAIN /* café */ ANALYZE COPY (SELECT 1) TO '{target}'",
    "explain-comment-options-analyze": "EXPLAIN -- é\n(ANALYZE) SELECT 1",
    "copy": "COPY (SELECT 1) TO '{target}'",
    "copy-view-inside-root": "COPY clips TO '{inside}'",
    "export-database": "EXPORT DATABASE '{export}'",
    "two-statements-copy": "SELECT 1; COPY (SELECT 1) TO '{target}'",
    "two-statements-select": "SELECT 1; SELECT 2",
    "query-function-copy": "SELECT * FROM query('COPY (SELECT 1) TO ''{target}''')",
    "read-text": "SELECT * FROM read_text('{outside}/secret.txt')",
    "read-text-etc": "SELECT * FROM read_text('/etc/hostname')",
    "read-csv-auto": "SELECT * FROM read_csv_auto('{outside}/secret.csv')",
    "read-json-auto": "SELECT * FROM read_json_auto('{outside}/secret.json')",
    "read-blob": "SELECT * FROM read_blob('{outside}/secret.txt')",
    "glob": "SELECT * FROM glob('{outside}/*')",
    "read-parquet-outside": "SELECT * FROM read_parquet('{outside}/secret.parquet')",
    "replacement-scan-outside": "SELECT * FROM '{outside}/secret.parquet'",
    "dot-dot-out-of-root": "SELECT * FROM read_text('{root}/clips/v1/../../../outside/secret.txt')",
    "root-prefix-sibling": "SELECT * FROM read_text('{root}x/secret.txt')",
    "remote-url": "SELECT * FROM read_parquet('https://example.invalid/x.parquet')",
    "attach": "ATTACH '{target}.db' AS other",
    "set-external-access": "SET enable_external_access = true",
    "set-allowed-directories": "SET allowed_directories = ['/']",
    "reset-external-access": "RESET enable_external_access",
    "set-profiling-output": "SET profiling_output = '{target}'",
    "pragma-profiling": "PRAGMA enable_profiling",
    "pragma-table-info": "PRAGMA table_info('clips')",
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "call": "CALL pragma_version()",
    "insert": "INSERT INTO clips SELECT * FROM clips",
    "create-table": "CREATE TABLE t AS SELECT 1",
    "drop-view": "DROP VIEW clips",
}


@pytest.mark.parametrize("template", list(ESCAPES.values()), ids=list(ESCAPES))
def test_escape_is_refused_and_writes_nothing(root: DataRoot, paths: dict[str, str], template: str) -> None:
    with pytest.raises(QueryError) as refused:
        query(template.format(**paths), root)
    message = str(refused.value)
    assert message and "\n" not in message
    assert CONTENT not in message  # no file content leaks through the error either
    assert _written(paths) == []
    assert query("SELECT count(*) FROM clips", root).rows == [(6,)]


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("INSTALL httpfs", "INSTALL"),  # DuckDB's parser calls it LOAD
        ("force install httpfs", "FORCE INSTALL"),
        ("-- a comment first\nLOAD httpfs", "LOAD"),
        ("USE memory", "USE"),  # the parser: SET
        ("WITH a AS (SELECT 1) INSERT INTO clips SELECT * FROM a", "INSERT"),
        ("DROP VIEW clips", "DROP"),
        ("UPDATE EXTENSIONS", "UPDATE"),  # a kind DuckDB's Python enum lacks: a ValueError traceback
    ],
)
def test_a_refused_statement_is_named_as_written(root: DataRoot, sql: str, named: str) -> None:
    with pytest.raises(QueryError) as refused:
        query(sql, root)
    assert str(refused.value).endswith(f"(SELECT, or EXPLAIN without ANALYZE), got {named}"), refused.value


# What the statement check would refuse anyway: the sandbox must stop each one on its own.
SANDBOX_ONLY = {
    "copy": "COPY (SELECT 1) TO '{target}'",
    "explain-analyze-copy": "EXPLAIN ANALYZE COPY (SELECT 1) TO '{target}'",
    "export-database": "EXPORT DATABASE '{export}'",
    "attach": "ATTACH '{target}.db' AS other",
    "read-text": "SELECT * FROM read_text('{outside}/secret.txt')",
    "read-csv-auto": "SELECT * FROM read_csv_auto('{outside}/secret.csv')",
    "glob": "SELECT * FROM glob('{outside}/*')",
    "read-parquet-outside": "SELECT * FROM read_parquet('{outside}/secret.parquet')",
    "set-external-access": "SET enable_external_access = true",
    "set-allowed-directories": "SET allowed_directories = ['/']",
    "reset-external-access": "RESET enable_external_access",
    "set-autoload": "SET autoload_known_extensions = true",
    "set-lock": "SET lock_configuration = false",
    "pragma-profiling": "PRAGMA enable_profiling",
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
}


@pytest.mark.parametrize("template", list(SANDBOX_ONLY.values()), ids=list(SANDBOX_ONLY))
def test_sandbox_blocks_even_without_statement_check(
    root: DataRoot, paths: dict[str, str], template: str
) -> None:
    with _reader(root) as con, pytest.raises(duckdb.Error):
        con.execute(template.format(**paths)).fetchall()
    assert _written(paths) == []


def test_sandbox_settings_are_locked_in(root: DataRoot) -> None:
    with _reader(root) as con:
        settings = dict(
            con.execute(
                "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', "
                "'autoinstall_known_extensions', 'autoload_known_extensions', 'lock_configuration', "
                "'allowed_directories')"
            ).fetchall()
        )
    assert settings["enable_external_access"] == "false"
    assert settings["autoinstall_known_extensions"] == "false"
    assert settings["autoload_known_extensions"] == "false"
    assert settings["lock_configuration"] == "true"
    assert f"{root.url}/clips/v1/" in settings["allowed_directories"]
    assert f"{root.url}/," not in settings["allowed_directories"]  # only dataset folders, not the root


NORMAL = {
    "view": ("SELECT count(*), count(DISTINCT video_id) FROM clips", [(6, 3)]),
    "video-catalog": ("SELECT video_id, keep, drop_reason FROM video_catalog ORDER BY 1", None),
    "with": ("WITH c AS (SELECT * FROM clips) SELECT count(*) FROM c", [(6,)]),
    "from-first": ("FROM clips SELECT count(*)", [(6,)]),
    "trailing-semicolon": ("SELECT count(*) FROM clips;", [(6,)]),
    "comment-first": ("/* why */ SELECT count(*) FROM clips", [(6,)]),
    "shard-by-path": ("SELECT count(*) FROM read_parquet('{root}/clips/v1/part-00000.parquet')", [(2,)]),
    "empty-typed-view": ("SELECT count(*) FROM frame_features", [(0,)]),
}


@pytest.mark.parametrize(("template", "expected"), list(NORMAL.values()), ids=list(NORMAL))
def test_normal_queries_still_work(
    root: DataRoot, template: str, expected: list[tuple[object, ...]] | None
) -> None:
    result = query(template.format(root=root.url), root)
    if expected is None:
        expected = [("0" * 11, True, None), ("1" * 11, False, "too_few_words")]
    assert result.rows == expected


@pytest.mark.parametrize("sql", ["EXPLAIN SELECT count(*) FROM clips", "DESCRIBE clips", "SUMMARIZE clips"])
def test_explain_describe_summarize_are_allowed(root: DataRoot, sql: str) -> None:
    assert query(sql, root).rows


@pytest.mark.parametrize(
    "sql",
    [
        "EXPLAIN /* why */ SELECT count(*) FROM clips",
        "EXPLAIN -- the plan of the café query\nSELECT count(*) FROM clips",
        "EXPLAIN /* 如何 */ SELECT count(*) FROM clips WHERE text <> 'é'",
    ],
)
def test_explain_with_a_comment_before_its_select_is_allowed(root: DataRoot, sql: str) -> None:
    """The EXPLAIN keyword was read up to the next token, a comment included, and (DuckDB's offsets counting
    bytes) cut a character off after non-ASCII text: a plain EXPLAIN with a comment was refused."""
    assert query(sql, root).rows


def test_second_reader_and_refresh_while_reading(root: DataRoot) -> None:
    # Readers in one process must not share one DuckDB instance: its settings are locked after the first.
    with _reader(root) as first:
        assert query("SELECT count(*) FROM clips", root).rows == [(6,)]
        refresh(root)
        assert first.execute("SELECT count(*) FROM clips").fetchall() == [(6,)]
    assert query("SELECT count(*) FROM clips", root).rows == [(6,)]
