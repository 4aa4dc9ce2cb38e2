"""DuckDB catalog: one view per dataset over its Parquet shards, read-only queries, summary stats.

This is the only module that imports duckdb.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from storage.layout import DataRoot
from storage.schemas import SCHEMAS
from storage.shards import shard_files

log = logging.getLogger(__name__)

# Statement kinds a user query may contain: everything else could write (INSERT, COPY ... TO, ATTACH,
# CREATE, SET, ...) and is refused before it reaches DuckDB.
READ_ONLY_STATEMENTS = {"SELECT", "EXPLAIN"}


class QueryError(ValueError):
    """A query DuckDB rejected, or one that is not read-only."""


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def catalog_file(root: DataRoot) -> str:
    """The catalog's file: in the data root when local, else in a local cache keyed by the root URL."""
    if root.is_local:
        return root.catalog_path()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "howto" / "catalogs"
    cache.mkdir(parents=True, exist_ok=True)
    return str(cache / f"{hashlib.sha256(root.url.encode()).hexdigest()[:16]}.duckdb")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _empty_schema_file(root: DataRoot, dataset: str) -> str:
    """A zero-row Parquet file with the dataset's schema, so an empty dataset still has a typed view."""
    spec = SCHEMAS[dataset]
    path = f"{root.dataset_dir(dataset, spec.version)}/_schema.parquet"
    if not root.exists(path):
        root.makedirs(root.dataset_dir(dataset, spec.version))
        with root.open(path, "wb") as handle:
            pq.write_table(pa.table({f.name: pa.array([], f.type) for f in spec.schema}), handle)
    return path


def _view_sql(root: DataRoot, dataset: str) -> str:
    files = shard_files(root, dataset)
    spec = SCHEMAS[dataset]
    source = root.shard_glob(dataset, spec.version) if files else _empty_schema_file(root, dataset)
    return f"CREATE OR REPLACE VIEW {dataset} AS SELECT * FROM read_parquet({_quote(source)})"


# Videos as a user sees them: the probe decision, then the captions stage's words rule and facts.
VIDEO_CATALOG_SQL = """
CREATE OR REPLACE VIEW video_catalog AS
SELECT v.* EXCLUDE (keep, drop_reason, unavailable_since),
       c.n_words, c.n_segments, c.n_clips,
       v.keep AND coalesce(c.keep, true) AND g.unavailable_since IS NULL AS keep,
       coalesce(v.drop_reason, CASE WHEN g.unavailable_since IS NOT NULL THEN 'unavailable' END,
                CASE WHEN c.keep = false THEN c.drop_reason END) AS drop_reason,
       g.unavailable_since
FROM (
    -- the first sighting holds what the video is; later crawls only append rows for videos now gone
    SELECT * FROM videos WHERE unavailable_since IS NULL
    QUALIFY row_number() OVER (PARTITION BY video_id ORDER BY crawl_id) = 1
) v
LEFT JOIN (
    SELECT * FROM captions QUALIFY row_number() OVER (PARTITION BY video_id ORDER BY crawl_id DESC) = 1
) c USING (video_id)
LEFT JOIN (
    SELECT video_id, min(unavailable_since) AS unavailable_since FROM videos
    WHERE unavailable_since IS NOT NULL GROUP BY 1
) g USING (video_id)
"""


def refresh(root: DataRoot | str | None = None, attempts: int = 20) -> str:
    """(Re)create every dataset's view; retried briefly if another process holds the catalog open."""
    root = DataRoot.from_any(root)
    root.makedirs(root.url)
    path = catalog_file(root)
    for attempt in range(attempts):
        try:
            with duckdb.connect(path) as con:
                for dataset in SCHEMAS:
                    con.execute(_view_sql(root, dataset))
                if {"videos", "captions"} <= set(SCHEMAS):
                    con.execute(VIDEO_CATALOG_SQL)
            return path
        except duckdb.IOException as exc:  # lock held by a reader in another process
            if attempt == attempts - 1:
                raise
            log.debug("catalog busy (%s); retrying", exc)
            time.sleep(0.25)
    return path


def query(sql: str, root: DataRoot | str | None = None) -> QueryResult:
    """Run a read-only query against the catalog; raises QueryError with DuckDB's message."""
    root = DataRoot.from_any(root)
    path = catalog_file(root)
    if not Path(path).exists():
        refresh(root)
    try:
        with duckdb.connect(path, read_only=True) as con:
            statements = con.extract_statements(sql)
            if not statements:
                raise QueryError("empty query")
            for statement in statements:
                kind = statement.type.name
                if kind not in READ_ONLY_STATEMENTS:
                    raise QueryError(
                        f"only read-only queries are allowed (got {kind}): {statement.query.strip()}"
                    )
            for statement in statements[:-1]:
                con.execute(statement)
            cursor = con.execute(statements[-1])
            columns = [d[0] for d in cursor.description or []]
            return QueryResult(columns, cursor.fetchall())
    except duckdb.Error as exc:
        raise QueryError(
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        ) from exc


def stats(root: DataRoot | str | None = None) -> dict[str, Any]:
    """One summary of the data root: tasks, videos kept/dropped by reason, clips, hours, words, categories."""
    root = DataRoot.from_any(root)
    refresh(root)

    def scalar(sql: str) -> Any:
        return query(sql, root).rows[0][0]

    out: dict[str, Any] = {
        "data_root": root.url,
        "tasks": {
            "total": scalar("SELECT count(*) FROM tasks"),
            "kept": scalar("SELECT count(*) FROM tasks WHERE keep"),
            "dropped_by_reason": dict(
                query(
                    "SELECT drop_reason, count(*) FROM tasks WHERE NOT keep GROUP BY 1 ORDER BY 2 DESC", root
                ).rows
            ),
        },
        "videos": {
            "probed": scalar("SELECT count(*) FROM video_catalog"),
            "kept": scalar("SELECT count(*) FROM video_catalog WHERE keep"),
            "dropped_by_reason": dict(
                query(
                    "SELECT coalesce(drop_reason, 'error'), count(*) FROM video_catalog WHERE NOT keep "
                    "GROUP BY 1 ORDER BY 2 DESC",
                    root,
                ).rows
            ),
            "hours_kept": round(
                float(scalar("SELECT coalesce(sum(duration_s), 0) FROM video_catalog WHERE keep")) / 3600, 3
            ),
        },
        "clips": {
            "total": scalar("SELECT count(*) FROM clips"),
            "words": int(scalar("SELECT coalesce(sum(n_words), 0) FROM clips")),
            "hours": round(float(scalar("SELECT coalesce(sum(end_ms - start_ms), 0) FROM clips")) / 3.6e6, 3),
        },
        "top_categories": [
            {"category": c, "clips": n}
            for c, n in query(
                "SELECT coalesce(category, '(none)'), count(*) FROM clips GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10",
                root,
            ).rows
        ],
    }
    return out
