"""DuckDB catalog: one view per dataset over its finished shards, sandboxed read-only queries, stats.

This is the only module that imports duckdb.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from storage.atomic import TMP_PREFIX, folder_lock, temp_path_for
from storage.layout import DataRoot, DataRootProblem, check_data_root
from storage.private_temp import private_temp_dir
from storage.schemas import SCHEMAS
from storage.shards import collecting_left_out, shard_files

log = logging.getLogger(__name__)

# Empty datasets get a typed zero-row table in this schema (kept out of `SHOW TABLES`), so their view
# needs no file in the data root and refresh never writes there.
EMPTY_SCHEMA = "_empty"
# What a catalog was built from (`_meta.built_from`: the root's path and `_fingerprint`): its views name
# shard files by absolute path, so a catalog of a copied or moved root, or one that misses newer shards,
# is rebuilt before it is read.
META_SCHEMA = "_meta"


class QueryError(ValueError):
    """A query DuckDB rejected, or one that is not read-only."""


class QueryOutOfMemory(QueryError):
    """A query that needed more memory than its limit (and the spill folder could not take the rest)."""


class CatalogError(RuntimeError):
    """The catalog could not be rebuilt; the previous catalog file is left as it was."""


@dataclass(frozen=True)
class QueryLimits:
    """DuckDB's memory and spill caps for a query, in bytes; None keeps DuckDB's own (80% of the RAM; 90% of
    the free disk where it spills). Set when the connection opens: the sandbox then locks the configuration,
    so a query cannot raise them with SET, and the caller is the only one who can."""

    memory_bytes: int | None = None
    spill_bytes: int | None = None

    def config(self) -> dict[str, str]:
        out = {}
        if self.memory_bytes is not None:
            out["memory_limit"] = f"{self.memory_bytes}B"
        if self.spill_bytes is not None:
            out["max_temp_directory_size"] = f"{self.spill_bytes}B"
        return out


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


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _allowed_directories(root: DataRoot) -> list[str]:
    """Only the folders the views read: each dataset's current version folder, never the whole disk."""
    return [root.dataset_dir(dataset, spec.version) + "/" for dataset, spec in SCHEMAS.items()]


def _sandbox(con: duckdb.DuckDBPyConnection, root: DataRoot) -> None:
    """DuckDB's own sandbox, the real defence behind the statement check in `query`.

    Files outside the dataset folders cannot be read or written (read_text, COPY ... TO, ATTACH,
    EXPORT, Python replacement scans), no extension is installed or loaded, and the lock stops a
    query from turning any of it back on with SET / RESET / PRAGMA. The order matters: DuckDB refuses
    allowed_directories once external access is off, and any SET once the configuration is locked.
    """
    if not root.is_local:
        # Remote roots are read through the root's own fsspec filesystem (s3fs, gcsfs), not DuckDB's httpfs:
        # the same credentials, endpoint (AWS_ENDPOINT_URL) and config the pipeline wrote with, and no
        # extension to download, which an offline machine could not. allowed_directories still applies.
        con.register_filesystem(root.fs)
    dirs = ", ".join(_quote(d) for d in _allowed_directories(root))
    con.execute(f"SET allowed_directories = [{dirs}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


# Extension auto-install/auto-load stay off on every connection: a query never fetches or runs code.
_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


@contextmanager
def _reader(
    root: DataRoot, *, rebuild: bool = False, limits: QueryLimits | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only, sandboxed connection to a catalog of the root's current shards (see `_current`)."""
    path = _current(root, rebuild=rebuild)
    # A fresh in-memory instance that attaches the file: DuckDB shares one instance (and its locked
    # settings) between connections to the same path in a process, so a second reader, or one after a
    # refresh swapped the file, would otherwise fail or see the old file.
    config: dict[str, Any] = {**_CONFIG, "temp_directory": spill_directory(path)}
    config.update((limits or QueryLimits()).config())
    with duckdb.connect(":memory:", config=config) as con:
        con.execute(f"ATTACH {_quote(path)} AS howto (READ_ONLY)")
        con.execute("USE howto")
        _sandbox(con, root)
        yield con


def spill_directory(catalog: str) -> str:
    """Where a query too big for memory spills: beside the catalog, or, when its folder cannot be written
    (a read-only root), in a folder named for it in a temp folder of this user's alone (the spill files hold
    the query's data, and the folder is one the query may read), so the query still runs."""
    folder = os.path.dirname(catalog)
    if os.access(folder, os.W_OK | os.X_OK):
        return catalog + ".tmp"
    digest = hashlib.sha256(catalog.encode()).hexdigest()[:16]
    return os.path.join(private_temp_dir("howto-spill"), digest)


def _current(root: DataRoot, *, rebuild: bool) -> str:
    """The path of a catalog built from the root's shards as they are now.

    The root's own catalog when it was built from them; else it is rebuilt (`refresh`). Where that
    cannot be written (a read-only root, a catalog path taken), the views are built in a temporary
    catalog outside the root, kept for this process; if even that fails, the root's catalog as last
    built answers (with a warning). A folder that holds no dataset gets no catalog written into it.
    """
    want = _fingerprint(root)
    if want is None:  # not (yet) a data root: empty views, and nothing written into the folder
        return _private_catalog(root, "")
    path = catalog_file(root)
    if not rebuild:
        built, left_out = _meta(path)
        if built == (root.url, want):
            _warn(left_out)
            return path
    try:
        return refresh(root)
    except CatalogError as exc:
        failure = exc
    try:
        private = _private_catalog(root, want)
        log.info("%s; views built in a temporary catalog outside the data root", _message(failure))
        return private
    except (duckdb.Error, OSError) as exc:
        log.debug("catalog: temporary catalog not built either: %s", _message(exc))
    built = _built_from(path)
    if built is not None and built[0] == root.url:
        log.warning("%s; answering from the catalog as last built", _message(failure))
        return path
    raise failure


def holds_datasets(root: DataRoot) -> bool:
    """True when the root has a folder of at least one dataset: what tells a data root from any folder."""
    return bool(_present_datasets(root))


def _present_datasets(root: DataRoot) -> list[str]:
    try:
        present = {p.rstrip("/").rsplit("/", 1)[-1] for p in root.fs.ls(root.url, detail=False)}
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(d for d in SCHEMAS if d in present)


def _fingerprint(root: DataRoot) -> str | None:
    """What the views are built from: the root's path, the view definitions, every dataset's name, version
    and schema, and the name, size and modification time of every shard and marker file of each dataset's
    current version; None when the root holds no dataset folder at all. Listings only, cheap enough for
    every query: one of the root and one recursive one per dataset (`find`: on an object store one prefix
    listing, where a listing per folder took two requests)."""
    datasets = _present_datasets(root)
    if not datasets:
        return None
    # The schemas too, of datasets the root does not hold as well: a catalog built before an upgrade added a
    # dataset (or changed an empty one's columns) had no view of it, and was kept, so `SELECT ... FROM
    # audio_features` on a finished root failed ("does not exist") until a stage ran again.
    parts = [root.url, VIDEO_CATALOG_SQL, CRAWLS_SQL]
    parts += [f"{name} v{spec.version} {spec.schema}" for name, spec in sorted(SCHEMAS.items())]
    for dataset in datasets:
        directory = root.dataset_dir(dataset, SCHEMAS[dataset].version)
        parts.append(directory)
        parts += _shard_stamps(root, directory)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _shard_stamps(root: DataRoot, directory: str) -> list[str]:
    """ "folder/name:size:modified" of the shard files in `directory` and of their markers in its
    `_markers` folder, shards first, each folder in name order; temp files of a writer at work (which come
    and go) and anything deeper are left out."""
    try:
        entries = root.fs.find(directory, detail=True)
    except (FileNotFoundError, NotADirectoryError):
        return []
    base = root.fs._strip_protocol(directory).rstrip("/")
    folders: dict[str, list[str]] = {directory: [], f"{directory}/_markers": []}
    for path, entry in sorted(entries.items()):
        parent, _, name = str(path).rstrip("/").rpartition("/")
        folder = (
            directory if parent == base else f"{directory}/_markers" if parent == f"{base}/_markers" else None
        )
        if folder is None or not name.startswith("part-") or entry.get("type") == "directory":
            continue
        stamp = next((entry[k] for k in ("mtime", "LastModified", "updated", "ETag") if k in entry), "")
        folders[folder].append(f"{folder}/{name}:{entry.get('size')}:{stamp}")
    return [line for lines in folders.values() for line in lines]


def _warn_left_out(path: str) -> None:
    """Log again, for a reader of a catalog built earlier, each damaged shard its views leave out: the
    warning came only with the build, and later queries answered from fewer rows without a word."""
    _warn(_meta(path)[1])


def _warn(left_out: list[str]) -> None:
    for problem in left_out:
        log.warning("%s", problem)


def _built_from(path: str) -> tuple[str, str] | None:
    """(root path, fingerprint) the catalog at `path` records; None when it cannot be read or records none."""
    return _meta(path)[0]


def _meta(path: str) -> tuple[tuple[str, str] | None, list[str]]:
    """What the catalog at `path` records, read in one connection: (root path, fingerprint) it was built
    from (None when it cannot be read or records none), and the lines about the shards it left out."""
    if not os.path.isfile(path):
        return None, []
    try:
        with duckdb.connect(":memory:", config=dict(_CONFIG)) as con:
            con.execute(f"ATTACH {_quote(path)} AS howto (READ_ONLY)")
            row = con.execute(f"SELECT root, fingerprint FROM howto.{META_SCHEMA}.built_from").fetchone()
            try:
                left_out = [
                    r[0] for r in con.execute(f"SELECT problem FROM howto.{META_SCHEMA}.left_out").fetchall()
                ]
            except duckdb.Error:  # built before catalogs kept the list
                left_out = []
    except duckdb.Error:  # not a DuckDB file, cut short, or built before catalogs recorded their source
        return None, []
    return ((str(row[0]), str(row[1])) if row else None), left_out


# Catalogs built outside a root that cannot take one, per (root, fingerprint), removed when the process ends.
_private: dict[tuple[str, str], str] = {}


def _private_catalog(root: DataRoot, want: str) -> str:
    path = _private.get((root.url, want))
    if path is not None and os.path.isfile(path):
        _warn_left_out(path)
        return path
    directory = tempfile.mkdtemp(prefix="howto-catalog-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    path = os.path.join(directory, "catalog.duckdb")
    _build(path, root)
    _private[(root.url, want)] = path
    return path


def _empty_table(con: duckdb.DuckDBPyConnection, dataset: str, scratch: str) -> None:
    """A zero-row table with the dataset's schema, typed exactly as DuckDB reads its Parquet shards."""
    spec = SCHEMAS[dataset]
    path = os.path.join(scratch, f"{dataset}.parquet")
    pq.write_table(pa.table({f.name: pa.array([], f.type) for f in spec.schema}), path)
    con.execute(
        f"CREATE TABLE {EMPTY_SCHEMA}.{_ident(dataset)} AS SELECT * FROM read_parquet({_quote(path)})"
    )


def _dataset_view(con: duckdb.DuckDBPyConnection, root: DataRoot, dataset: str) -> bool:
    """Create the dataset's view over its marked shards; False (logged) when they cannot be read."""
    try:
        files = shard_files(root, dataset)
        source = "read_parquet([" + ", ".join(_quote(f) for f in files) + "])"
        # count(*) reads every file's footer: a truncated or foreign file fails here, not in a user's query.
        if files:
            con.execute(f"SELECT count(*) FROM {source}").fetchall()
    except Exception as exc:  # noqa: BLE001 - one unreadable dataset must not cost the others their views
        log.warning("catalog: skipping view %s: %s", dataset, _message(exc))
        return False
    if not files:
        source = f"{EMPTY_SCHEMA}.{_ident(dataset)}"
    # An explicit file list, never a glob: an unmarked or orphaned file in the folder never shows up.
    con.execute(f"CREATE VIEW {_ident(dataset)} AS SELECT * FROM {source}")
    return True


# Videos as a user sees them: the probe decision, then the captions stage's words rule and facts.
VIDEO_CATALOG_SQL = """
CREATE VIEW video_catalog AS
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
    -- gone since the first re-check that found it gone after the last one that saw it back, if any
    SELECT video_id, min(unavailable_since) AS unavailable_since FROM videos
    LEFT JOIN (SELECT video_id, max(crawl_id) AS back FROM {returned} WHERE change = 'returned' GROUP BY 1)
        USING (video_id)
    WHERE unavailable_since IS NOT NULL AND unavailable_since > coalesce(back, '') GROUP BY 1
) g USING (video_id)
"""


# One row per crawl generation (every crawl id the search recorded): hits, what it added, what vanished,
# whose views changed, whose captions a re-check found changed. The first generation has no change rows:
# everything in it was added. A re-crawl that changed nothing has no change rows either: its previous
# generation is then the one before it in search_results, as tasks/search/crawl_record.py chose it.
# A crawl whose every search failed (an outage, every query refused: no row with a hit or status ok) is no
# generation: its status is 'failed' (else 'ok') and no later crawl takes it as its previous generation,
# as crawl_record.previous_generation skips it. A column added goes last: `SELECT *` users read by position.
CRAWLS_SQL = """
CREATE VIEW crawls AS
WITH generations AS (
    -- a task whose search failed has a row with neither rank nor video id: no hit
    SELECT crawl_id, count(*) FILTER (WHERE rank IS NOT NULL OR video_id IS NOT NULL) AS search_hits,
           count(DISTINCT video_id) AS videos_found,
           coalesce(bool_or(rank IS NOT NULL OR video_id IS NOT NULL OR status = 'ok'), false) AS answered
    FROM search_results GROUP BY 1
), first_seen AS (
    SELECT video_id, min(crawl_id) AS crawl_id, bool_or(keep) AS keep FROM videos
    WHERE unavailable_since IS NULL GROUP BY 1
), changes AS (
    SELECT crawl_id, any_value(previous_crawl_id) AS previous_crawl_id,
           count(*) FILTER (WHERE change = 'views') AS views_changed,
           count(*) FILTER (WHERE change = 'captions') AS captions_changed,
           count(*) FILTER (WHERE change = 'returned') AS returned
    FROM crawl_changes GROUP BY 1
)
SELECT g.crawl_id,
       coalesce(c.previous_crawl_id, max(CASE WHEN g.answered THEN g.crawl_id END) OVER (
           ORDER BY g.crawl_id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)) AS previous_crawl_id,
       g.search_hits, g.videos_found,
       (SELECT count(*) FROM first_seen f WHERE f.crawl_id = g.crawl_id) AS added,
       (SELECT count(*) FROM first_seen f WHERE f.crawl_id = g.crawl_id AND f.keep) AS added_kept,
       (SELECT count(DISTINCT video_id) FROM videos v WHERE v.unavailable_since = g.crawl_id) AS vanished,
       coalesce(c.views_changed, 0) AS views_changed,
       coalesce(c.captions_changed, 0) AS captions_changed,
       coalesce(c.returned, 0) AS returned,
       CASE WHEN g.answered THEN 'ok' ELSE 'failed' END AS status
FROM generations g LEFT JOIN changes c USING (crawl_id)
ORDER BY g.crawl_id
"""


def _build(path: str, root: DataRoot) -> None:
    # Taken before the shards are read: a shard written during the build makes the next reader rebuild.
    fingerprint = _fingerprint(root) or ""
    with duckdb.connect(path, config=dict(_CONFIG)) as con, tempfile.TemporaryDirectory() as scratch:
        con.execute(f"CREATE SCHEMA {META_SCHEMA}")
        con.execute(f"CREATE TABLE {META_SCHEMA}.built_from (root VARCHAR, fingerprint VARCHAR)")
        con.execute(f"INSERT INTO {META_SCHEMA}.built_from VALUES (?, ?)", [root.url, fingerprint])
        con.execute(f"CREATE SCHEMA {EMPTY_SCHEMA}")
        for dataset in SCHEMAS:
            _empty_table(con, dataset, scratch)
        _sandbox(con, root)  # from here on only the dataset folders are readable
        with collecting_left_out() as left_out:
            built = {dataset for dataset in SCHEMAS if _dataset_view(con, root, dataset)}
        older = _older_versions(root)
        _warn(older)
        left_out += older
        # Damaged shards the views leave out, said again by every reader of this catalog (_warn_left_out).
        con.execute(f"CREATE TABLE {META_SCHEMA}.left_out (problem VARCHAR)")
        if left_out:
            con.executemany(f"INSERT INTO {META_SCHEMA}.left_out VALUES (?)", [[p] for p in left_out])
        if {"videos", "captions"} <= built:
            # Videos a re-check saw back are no longer gone (crawl_changes 'returned' rows); without that
            # dataset's view, none has come back.
            returned = "crawl_changes" if "crawl_changes" in built else f"{EMPTY_SCHEMA}.crawl_changes"
            con.execute(VIDEO_CATALOG_SQL.format(returned=returned))
        elif {"videos", "captions"} <= set(SCHEMAS):
            log.warning("catalog: skipping view video_catalog: videos or captions has no view")
        if {"search_results", "videos", "crawl_changes"} <= built:
            con.execute(CRAWLS_SQL)


def _older_versions(root: DataRoot) -> list[str]:
    """A line for each dataset folder of another schema version holding shards: this version reads only
    its own (`<dataset>/v<N>`), so a root written before a schema changed (crawl_changes v1, say) showed
    empty views and zero counts (the `crawls` view's changes) without a word.

    A shard the current version holds too (the stage ran again, or a re-crawl re-recorded that generation)
    is not named: the line asked, at every query, for what had been done."""
    problems = []
    for dataset in _present_datasets(root):
        current = SCHEMAS[dataset].version
        try:
            folders = root.fs.ls(root.path(dataset), detail=False)
        except (FileNotFoundError, NotADirectoryError):
            continue
        redone = _marker_names(root, root.dataset_dir(dataset, current))
        for folder in sorted(str(p).rstrip("/") for p in folders):
            name = folder.rsplit("/", 1)[-1]
            if not (name.startswith("v") and name[1:].isdigit()) or int(name[1:]) == current:
                continue
            markers = _marker_names(root, folder) - redone
            if markers:
                problems.append(
                    f"{dataset}: {len(markers)} shards of schema {name} in {root.path(dataset, name)} are not "
                    f"read (written by another version of howto; this one reads v{current}): run the stage "
                    f"that writes {dataset} again to have them in v{current}"
                )
    return problems


def _marker_names(root: DataRoot, folder: str) -> set[str]:
    """The names of the shard markers (`part-NNNNN.json`) in a dataset version's folder; none if it has none."""
    try:
        paths = root.fs.ls(f"{folder}/_markers", detail=False)
    except (FileNotFoundError, NotADirectoryError):
        return set()
    return {name for p in paths if (name := str(p).rstrip("/").rsplit("/", 1)[-1]).endswith(".json")}


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def refresh(root: DataRoot | str | None = None) -> str:
    """Rebuild the catalog beside the old one and swap it in atomically; returns the catalog's path.

    Readers (even in other processes) keep the file they opened and never see a half-built catalog;
    a failed build (full disk, a DuckDB error) leaves the old catalog untouched and raises CatalogError.
    Writers take turns (a lock on the folder), and each first removes what a killed writer left.
    """
    root = DataRoot.from_any(root)
    if root.is_local:
        try:  # a read-only or unwritable root: said in one line, before any temp file is tried
            check_data_root(root, write=True, min_free_bytes=0)
        except DataRootProblem as exc:
            raise CatalogError(f"catalog not rebuilt: {exc}") from exc
    root.makedirs(root.url)
    path = catalog_file(root)
    directory, name = os.path.split(path)
    with folder_lock(directory):
        _remove_dead_writers_files(directory, name)
        return _rebuild(root, path, directory)


def _remove_dead_writers_files(directory: str, name: str) -> None:
    """A writer killed mid-build leaves its temp catalog (and WAL) behind. Every writer holds the lock
    while its temp files exist, so under the lock any such file belongs to a writer that is gone."""
    for entry in os.scandir(directory):
        if entry.name.startswith(TMP_PREFIX) and entry.name.removesuffix(".wal").endswith(f"-{name}"):
            with suppress(FileNotFoundError):
                os.remove(entry.path)


def _rebuild(root: DataRoot, path: str, directory: str) -> str:
    tmp = temp_path_for(path)
    try:
        _build(tmp, root)
        # Only this function writes the catalog, always through a rename, so a WAL beside the target is a
        # leftover of an older writer and must not be replayed onto the new file.
        with suppress(FileNotFoundError):
            os.remove(path + ".wal")
        os.replace(tmp, path)
        _fsync_dir(directory)
    except (duckdb.Error, OSError) as exc:
        raise CatalogError(f"catalog not rebuilt ({_message(exc)}); the previous one is kept") from exc
    finally:
        # Only files that exist: on a read-only file system even removing a missing file fails (EROFS),
        # and that error must not replace the one being raised.
        for leftover in (tmp, tmp + ".wal"):
            if os.path.lexists(leftover):
                try:
                    os.remove(leftover)
                except OSError as exc:
                    log.warning("catalog: temp file %s not removed: %s", leftover, exc)
    return path


def _read_only_statement(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Accept one plain SELECT, or EXPLAIN of one (no ANALYZE: that runs the statement); judged by
    DuckDB's parser, not by string matching. The sandbox stays the real defence behind this."""
    statements = con.extract_statements(sql)
    if not statements:
        raise QueryError("empty query")
    if len(statements) > 1:
        raise QueryError(
            f"only read-only queries are allowed, one statement at a time (got {len(statements)})"
        )
    try:
        kind: duckdb.StatementType | None = statements[0].type
    except ValueError:  # a kind this DuckDB's Python enum lacks (UPDATE EXTENSIONS: "29 is not a valid ...")
        kind = None
    if kind == duckdb.StatementType.SELECT:
        return
    if kind == duckdb.StatementType.EXPLAIN and _explains_plain_select(con, statements[0].query):
        return
    raise QueryError(
        "only read-only queries are allowed (SELECT, or EXPLAIN without ANALYZE), got "
        + _statement_name(kind, statements[0].query)
    )


def _statement_name(kind: duckdb.StatementType | None, text: str) -> str:
    """What the user wrote: its first keyword (DuckDB files INSTALL under LOAD, USE under SET); the
    parser's kind when the statement opens with a CTE or a bracket."""
    starts = [start for start, comment in _tokens(text) if not comment]
    words = text[starts[0] :].split(None, 2) if starts else []
    first = words[0].upper() if words else ""
    if first == "FORCE" and len(words) > 1:  # FORCE INSTALL
        return f"FORCE {words[1].upper()}"
    return first if (first.isalpha() and first != "WITH") or kind is None else kind.name


def _tokens(text: str) -> list[tuple[int, bool]]:
    """(start in characters, is a comment) of each token of `text`. DuckDB's tokenizer counts UTF-8 bytes:
    sliced by its offsets, text after a non-ASCII character was cut in the wrong place."""
    raw = text.encode()
    return [
        (len(raw[:offset].decode(errors="replace")), kind == duckdb.token_type.comment)
        for offset, kind in duckdb.tokenize(text)
    ]


def _explains_plain_select(con: duckdb.DuckDBPyConnection, text: str) -> bool:
    """True when `text` is the EXPLAIN keyword followed by exactly one SELECT statement (comments between
    them allowed)."""
    tokens = _tokens(text)
    code = [i for i, (_, comment) in enumerate(tokens) if not comment]
    if len(code) < 2:
        return False
    first, after_first = tokens[code[0]][0], tokens[code[0] + 1][0]  # its own text, not a comment after it
    if text[first:after_first].strip().upper() != "EXPLAIN":
        return False
    try:  # `ANALYZE ...` or `(ANALYZE) ...` after EXPLAIN does not parse as a statement of its own
        inner = con.extract_statements(text[tokens[code[1]][0] :])
    except duckdb.Error:
        return False
    return len(inner) == 1 and inner[0].type == duckdb.StatementType.SELECT


def _query_error(exc: BaseException) -> QueryError:
    """DuckDB's first line; an out-of-memory error as its own kind (DuckDB's advice to SET memory_limit
    cannot be followed in the locked sandbox: the caller gives the limits, see QueryLimits)."""
    if isinstance(exc, duckdb.OutOfMemoryException):
        return QueryOutOfMemory(_message(exc))
    return QueryError(_message(exc))


def _execute(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyConnection:
    """The statement checked read-only, then run; its rows are still to fetch. Raises QueryError."""
    try:
        _read_only_statement(con, sql)
        return con.execute(sql)
    except duckdb.Error as exc:
        raise _query_error(exc) from exc


def _run(con: duckdb.DuckDBPyConnection, sql: str) -> QueryResult:
    cursor = _execute(con, sql)
    try:
        return QueryResult([d[0] for d in cursor.description or []], cursor.fetchall())
    except duckdb.Error as exc:
        raise _query_error(exc) from exc


def query(sql: str, root: DataRoot | str | None = None, limits: QueryLimits | None = None) -> QueryResult:
    """Run one read-only query against the catalog; raises QueryError with DuckDB's message."""
    root = DataRoot.from_any(root)
    try:
        with _reader(root, limits=limits) as con:
            return _run(con, sql)
    except (duckdb.Error, CatalogError) as exc:  # the catalog itself could not be built or opened
        raise _query_error(exc) from exc


@contextmanager
def query_batches(
    sql: str, root: DataRoot | str | None = None, batch_rows: int = 10_000, limits: QueryLimits | None = None
) -> Iterator[tuple[list[str], Iterator[list[tuple[Any, ...]]]]]:
    """`query`, with the rows handed out in batches as DuckDB streams them: memory stays that of one batch
    whatever the result's size (all of `SELECT * FROM clips` as Python tuples is ~0.7 KB a row, past any
    machine's memory at HowTo100M's 136M clips). Yields (columns, batches); raises QueryError."""
    root = DataRoot.from_any(root)
    try:
        with _reader(root, limits=limits) as con:
            cursor = _execute(con, sql)

            def batches() -> Iterator[list[tuple[Any, ...]]]:
                while True:
                    try:
                        rows = cursor.fetchmany(batch_rows)
                    except duckdb.Error as exc:  # an error met part way (a cast, a division by zero)
                        raise _query_error(exc) from exc
                    if not rows:
                        return
                    yield rows

            yield [d[0] for d in cursor.description or []], batches()
    except (duckdb.Error, CatalogError) as exc:  # the catalog itself could not be built or opened
        raise _query_error(exc) from exc


def stats(root: DataRoot | str | None = None) -> dict[str, Any]:
    """One summary of the data root: tasks, videos kept/dropped by reason, clips, hours, words, feature and
    audio coverage, categories.

    Raises QueryError when a view it needs is missing (its dataset was skipped as unreadable).
    """
    root = DataRoot.from_any(root)
    try:
        # Always rebuilt (in a temporary catalog where the root cannot take one), so a damaged shard's
        # warning shows on every run, not only the one that first found it.
        with _reader(root, rebuild=True) as con:
            return _summary(root, lambda sql: _run(con, sql).rows)
    except duckdb.Error as exc:
        raise QueryError(_message(exc)) from exc


def feature_coverage(root: DataRoot) -> dict[str, Any]:
    """The `features` section of `stats` alone, over the catalog as it is (the caller refreshed it)."""
    try:
        with _reader(root) as con:

            def rows(sql: str) -> list[tuple[Any, ...]]:
                return _run(con, sql).rows

            return _features_summary(rows, lambda sql: rows(sql)[0][0])
    except duckdb.Error as exc:
        raise QueryError(_message(exc)) from exc


def _summary(root: DataRoot, rows: Callable[[str], list[tuple[Any, ...]]]) -> dict[str, Any]:
    def scalar(sql: str) -> Any:
        return rows(sql)[0][0]

    return {
        "data_root": root.url,
        "tasks": {
            "total": scalar("SELECT count(*) FROM tasks"),
            "kept": scalar("SELECT count(*) FROM tasks WHERE keep"),
            "dropped_by_reason": dict(
                rows("SELECT drop_reason, count(*) FROM tasks WHERE NOT keep GROUP BY 1 ORDER BY 2 DESC")
            ),
        },
        "videos": {
            "probed": scalar("SELECT count(*) FROM video_catalog"),
            "kept": scalar("SELECT count(*) FROM video_catalog WHERE keep"),
            "dropped_by_reason": dict(
                rows(
                    "SELECT coalesce(drop_reason, 'error'), count(*) FROM video_catalog WHERE NOT keep "
                    "GROUP BY 1 ORDER BY 2 DESC"
                )
            ),
            "hours_kept": round(
                float(scalar("SELECT coalesce(sum(duration_s), 0) FROM video_catalog WHERE keep")) / 3600, 3
            ),
            # Kept videos whose length is unknown (every imported one: the release lists none) add nothing to
            # hours_kept; said apart, so an import's 0.0 h reads as unknown, not as empty videos.
            "kept_without_duration": scalar(
                "SELECT count(*) FROM video_catalog WHERE keep AND duration_s IS NULL"
            ),
        },
        "clips": {
            "total": scalar("SELECT count(*) FROM clips"),
            "videos": scalar("SELECT count(DISTINCT video_id) FROM clips"),
            "words": int(scalar("SELECT coalesce(sum(n_words), 0) FROM clips")),
            "hours": round(float(scalar("SELECT coalesce(sum(end_ms - start_ms), 0) FROM clips")) / 3.6e6, 3),
        },
        "features": _features_summary(rows, scalar),
        "audio": _audio_summary(scalar),
        "top_categories": [
            {"category": c, "clips": n}
            for c, n in rows(
                "SELECT coalesce(category, '(none)'), count(*) FROM clips GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10"
            )
        ],
    }


# Per video, its longest per-second row span end (one model's rows, so several encoders never double count).
_AUDIO_HOURS_SQL = """
SELECT coalesce(sum(end_ms), 0) / 3.6e6 FROM (
    SELECT video_id, max(t_end_ms) AS end_ms FROM audio_features WHERE status IN ('ok', 'silent') GROUP BY 1
)
"""


# One pass over frame_features per video: failed (any row not ok), on random weights, and its length (the
# longest ok row span end over its models, so several encoders never double count).
_FEATURE_VIDEOS_SQL = """
SELECT count(*) FILTER (WHERE failed), count(*) FILTER (WHERE random), coalesce(sum(end_ms), 0) / 3.6e6 FROM (
    SELECT video_id, bool_or(status <> 'ok') AS failed, bool_or(status = 'ok' AND random_weights) AS random,
           max(t_end_ms) FILTER (WHERE status = 'ok') AS end_ms
    FROM frame_features GROUP BY 1
)
"""


def _features_summary(
    rows: Callable[[str], list[tuple[Any, ...]]], scalar: Callable[[str], Any]
) -> dict[str, Any]:
    """Feature coverage: videos with features per model, failed ones, those on random weights (not
    pretrained: no use for research), and kept videos that have none yet (stage not run, or failed)."""
    failed, random, hours = rows(_FEATURE_VIDEOS_SQL)[0]
    return {
        "videos_by_model": dict(
            rows(
                "SELECT model, count(DISTINCT video_id) FROM frame_features WHERE status = 'ok' GROUP BY 1 ORDER BY 1"
            )
        ),
        "videos_failed": int(failed),
        "videos_random_weights": int(random),
        "kept_videos_without_features": int(
            scalar(
                "SELECT count(*) FROM video_catalog v WHERE keep AND NOT EXISTS (SELECT 1 FROM frame_features f "
                "WHERE f.video_id = v.video_id AND f.status = 'ok')"
            )
        ),
        "hours": round(float(hours), 3),
    }


def _audio_summary(scalar: Callable[[str], Any]) -> dict[str, Any]:
    """Audio coverage: videos with a track (silent ones counted apart too), without one, failed; hours."""

    def videos(where: str) -> int:
        return int(scalar(f"SELECT count(DISTINCT video_id) FROM audio_features WHERE {where}"))

    return {
        "videos_with_audio": videos("status IN ('ok', 'silent')"),
        "videos_silent": videos("status = 'silent'"),
        "videos_no_audio": videos("status = 'no_audio'"),
        "videos_failed": videos("status IN ('failed', 'error')"),
        "hours": round(float(scalar(_AUDIO_HOURS_SQL)), 3),
    }
