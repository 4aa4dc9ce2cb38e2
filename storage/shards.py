"""Atomic shard writer, completion markers and dataset readers (house rule 1)."""

from __future__ import annotations

import errno
import json
import logging
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from storage import atomic
from storage.layout import DataRoot, DataRootProblem
from storage.schemas import columns_problem, get_schema, validate_table

log = logging.getLogger(__name__)

# Row groups of at most ~64k rows keep point look-ups (one video's clips) cheap through min/max
# statistics while a full scan still reads big sequential chunks.
ROW_GROUP_SIZE = 65_536
# ... and of at most ~16 MiB of values: Arrow decodes one row group's column on one thread, so a feature
# shard in a single row group (8192 rows of 4096 float16 = 64 MiB) was read on one core. Decoding a
# list<float16> column costs a few ns per value: 8192 x 4096 values took 232 ms in one row group and
# 117 ms in groups of 2048 rows on 2 Xeon cores (4, 8 and 32 MiB groups were within 10%). The cost is
# Parquet's float16 itself, a FIXED_LEN_BYTE_ARRAY of 2 bytes that Arrow decodes value by value, not the
# list's levels. The same ReLU-like 8192 x 4096 values in 511-row groups, zstd, medians of 5: as a list
# column 126-130 ms, as a flat float16 column 122 ms, as float32 lists 185 ms, as int16 lists 196 ms; one
# fixed_size_binary(8192) value a row 60 ms (lz4: 29 against 105 ms as lists, uncompressed: 16 against
# 95). Binary rows would hide the vectors from DuckDB and from every other Parquet reader, so the vector
# columns stay lists of float16 and a training epoch pays this decode (most of the 9-10% of a bf16 step
# that `howto bench train` shows loading taking on 2 cores). Since then the vector columns are written
# without zstd (column_compression) and with required values (storage/schemas/vectors.py): the same
# shard reads in about half the time.
ROW_GROUP_BYTES = 16 << 20
# Tables of vectors (rows of at least WIDE_ROW_BYTES: a 384-float text embedding is 1.5 KiB) get groups of
# at most VECTOR_GROUP_BYTES, so a shard of a few MiB still decodes on every core: a text cache shard of
# 8192 x 384 float32 (12 MiB, one 16 MiB group) read in 40 ms, in 4 MiB groups 25 ms; the feature shard
# above 165 against 154 ms (2 Xeon cores, medians of 9, interleaved). Narrower tables keep the larger
# groups: the clips table (about 130 bytes a row) in 4 MiB groups of 31,724 rows ran `howto bench query`'s
# group-by and LIKE count 15-50% slower than in groups of 65,536.
WIDE_ROW_BYTES = 1 << 10
VECTOR_GROUP_BYTES = 4 << 20


def row_group_rows(table: pa.Table) -> int:
    """Rows per row group for `table`: ROW_GROUP_BYTES of its values (by its average row), or
    VECTOR_GROUP_BYTES where its rows hold vectors (WIDE_ROW_BYTES or more), at most ROW_GROUP_SIZE rows,
    at least one."""
    per_row = table.nbytes / max(table.num_rows, 1)
    bound = VECTOR_GROUP_BYTES if per_row >= WIDE_ROW_BYTES else ROW_GROUP_BYTES
    return max(1, min(ROW_GROUP_SIZE, int(bound // max(per_row, 1.0))))


class ShardUnreadable(DataRootProblem):
    """A Parquet file of the data root that cannot be read (cut short, garbled): the message names it.

    A DataRootProblem, so the CLI reports it in one line (exit 2) like any other unusable data root.
    """


@dataclass(frozen=True)
class Marker:
    """Proof that a shard is complete: what went in, what came out, and under which config."""

    dataset: str
    shard: int
    schema_version: int
    config_hash: str
    code_version: str
    rows_in: int
    rows_out: int
    drops: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    started_at: float = 0.0
    finished_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    # Proof the file is the one this marker was written for: a truncated or replaced file fails it.
    file_bytes: int = -1
    # What made the shard: its own config fingerprint (the part of config_hash that is not upstream),
    # the content fingerprint of each input shard, and the resolved config (no secrets).
    own_hash: str = ""
    inputs: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Marker:
        data = json.loads(text)
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def write_shard(
    root: DataRoot,
    dataset: str,
    shard: int,
    table: pa.Table,
    *,
    config_hash: str,
    code_version: str,
    rows_in: int,
    drops: Mapping[str, int] | None = None,
    errors: int = 0,
    started_at: float | None = None,
    extra: Mapping[str, Any] | None = None,
    sort_by: list[tuple[str, str]] | None = None,
    own_hash: str = "",
    inputs: Mapping[str, str] | None = None,
    config: Mapping[str, Any] | None = None,
) -> Marker:
    """Validate, write `{dataset}/v{N}/part-{shard}.parquet` atomically, then its marker.

    The marker is written last: a crash anywhere before leaves the shard not done, and a stale
    marker from an older config is overwritten only after the new data is in place.
    """
    spec = get_schema(dataset)
    table = validate_table(dataset, table)
    if sort_by:
        table = table.sort_by(sort_by)
    path = root.shard_path(dataset, spec.version, shard)
    directory = path.rsplit("/", 1)[0]
    root.makedirs(directory)
    # A stale marker must not vouch for the new file if we crash between its rename and the new marker.
    stale = root.marker_path(dataset, spec.version, shard)
    if root.exists(stale):
        root.fs.rm(stale)
    size = atomic.atomic_write(
        root,
        path,
        lambda handle: pq.write_table(
            table,
            handle,
            row_group_size=row_group_rows(table),
            compression=column_compression(table.schema),
            use_dictionary=dictionary_columns(table.schema),
        ),
    )
    marker = Marker(
        dataset=dataset,
        shard=shard,
        schema_version=spec.version,
        config_hash=config_hash,
        code_version=code_version,
        rows_in=rows_in,
        rows_out=table.num_rows,
        drops=dict(drops or {}),
        errors=errors,
        started_at=started_at if started_at is not None else time.time(),
        finished_at=time.time(),
        extra=dict(extra or {}),
        file_bytes=size,
        own_hash=own_hash,
        inputs=dict(inputs or {}),
        config=dict(config or {}),
    )
    atomic.atomic_write_bytes(root, root.marker_path(dataset, spec.version, shard), marker.to_json().encode())
    return marker


def read_marker(root: DataRoot, dataset: str, shard: int) -> Marker | None:
    """The shard's marker, or None if there is none (or it cannot be read: logged)."""
    spec = get_schema(dataset)
    marker, problem = _load_marker(root, root.marker_path(dataset, spec.version, shard))
    if problem is not None:
        log.warning("%s", problem)
    return marker


def _load_marker(root: DataRoot, path: str) -> tuple[Marker | None, str | None]:
    """The marker at `path` (None when there is none), or why it cannot be read: a marker cut short or
    garbled vouches for nothing, so its shard counts as not done and its stage redoes it."""
    if not root.exists(path):
        return None, None
    try:
        with root.open(path, "rb") as handle:
            return Marker.from_json(handle.read().decode()), None
    except (ValueError, TypeError, OSError, RecursionError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"{path}: marker cannot be read ({reason}); its shard is not read and will be redone"


def verify_shard(root: DataRoot, marker: Marker) -> str | None:
    """Why the marker's Parquet file cannot be trusted, or None when it is the file the marker describes.

    Checks that the file exists, has the size the marker recorded and a readable footer with the
    recorded row count: a file truncated after its marker was written (disk error, a copy cut short)
    is caught here instead of failing every reader later; and that its columns are the dataset's.
    """
    path = root.shard_path(marker.dataset, marker.schema_version, marker.shard)
    try:
        if not root.exists(path):
            return "shard file is missing"
        size = int(root.fs.size(path))
        if marker.file_bytes >= 0 and size != marker.file_bytes:
            return f"shard file has {size} bytes, its marker says {marker.file_bytes}"
        if root.is_local:
            metadata = pq.read_metadata(path)
        else:
            with root.open(path, "rb") as handle:
                metadata = pq.ParquetFile(handle).metadata  # metadata only: no dataset, no thread
        columns = metadata.schema.to_arrow_schema()
    except (OSError, pa.ArrowException) as exc:
        return f"shard file cannot be read ({exc})"
    if metadata.num_rows != marker.rows_out:
        return f"shard file has {metadata.num_rows} rows, its marker says {marker.rows_out}"
    # A file of other columns (copied from another version's root, written by hand) under a marker that
    # checks out would otherwise set or break the columns of every reader's view (`columns_problem`).
    problem = columns_problem(marker.dataset, columns)
    if problem is not None:
        return f"shard file's columns are not those of {marker.dataset} v{marker.schema_version} ({problem})"
    return None


def valid_marker(root: DataRoot, dataset: str, shard: int) -> Marker | None:
    """The shard's marker if it is of the current schema and its file checks out, else None (logged)."""
    marker = read_marker(root, dataset, shard)
    return None if marker is None else _vouched(root, marker)


# The lines about shards left out, gathered while `collecting_left_out` runs (the catalog keeps them).
_left_out: ContextVar[list[str] | None] = ContextVar("left_out", default=None)


@contextmanager
def collecting_left_out() -> Iterator[list[str]]:
    """Gather, besides logging them, the lines about damaged shards that readers leave out in this block."""
    found: list[str] = []
    token = _left_out.set(found)
    try:
        yield found
    finally:
        _left_out.reset(token)


def _vouched(root: DataRoot, marker: Marker) -> Marker | None:
    """`marker` when it is of the current schema and its file checks out, else None (a damaged file logged)."""
    problem = _shard_problem(root, marker)
    if problem is not None:
        log.warning("%s", problem)
        gathered = _left_out.get()
        if gathered is not None:
            gathered.append(problem)
        return None
    return marker if marker.schema_version == get_schema(marker.dataset).version else None


def _shard_problem(root: DataRoot, marker: Marker) -> str | None:
    """Why the file of a current-schema marker cannot be read, as a line naming the file; else None."""
    if marker.schema_version != get_schema(marker.dataset).version:
        return None  # an older schema's marker: its shard is redone anyway, nothing is damaged
    problem = verify_shard(root, marker)
    if problem is None:
        return None
    path = root.shard_path(marker.dataset, marker.schema_version, marker.shard)
    return f"{marker.dataset} shard {marker.shard} ({path}): {problem}; it will be redone"


def is_done(root: DataRoot, dataset: str, shard: int, config_hash: str) -> bool:
    """True only if the marker exists, matches the config hash and schema, and its file checks out."""
    marker = read_marker(root, dataset, shard)
    if marker is None or marker.config_hash != config_hash:
        return False
    return _vouched(root, marker) is not None


# The only marker names a writer makes (`marker_path`); anything else in `_markers/` was put there by hand.
_MARKER_NAME = re.compile(r"part-(\d{5,})\.json")


def list_markers(root: DataRoot, dataset: str) -> list[Marker]:
    """All readable markers of a dataset, sorted by shard; their files are not checked (`verified_markers`).

    A marker that cannot be read, or a stray file whose name no writer makes (`part-old.json`), is
    logged and left out: one bad file must not cost the dataset its other shards.
    """
    spec = get_schema(dataset)
    directory = f"{root.dataset_dir(dataset, spec.version)}/_markers"
    if not root.exists(directory):
        return []
    markers = []
    for path in root.fs.glob(f"{directory}/part-*.json"):
        name = path.rsplit("/", 1)[-1]
        match = _MARKER_NAME.fullmatch(name)
        if match is None or root.marker_path(dataset, spec.version, int(match[1])).rsplit("/", 1)[-1] != name:
            log.warning("%s: not a marker's name (part-NNNNN.json); ignored", path)
            continue
        marker, problem = _load_marker(root, path)
        if problem is not None:
            log.warning("%s", problem)
        elif marker is not None:
            markers.append(marker)
    return sorted(markers, key=lambda m: m.shard)


def verified_markers(root: DataRoot, dataset: str) -> list[Marker]:
    """The markers of finished shards a reader may read: current schema, and a file that checks out.

    A marker whose file fails the check (truncated, replaced, missing) is logged with the file and the
    reason and left out: its stage redoes the shard on its next run.
    """
    markers = []
    for marker in list_markers(root, dataset):
        vouched = _vouched(root, marker)
        if vouched is not None:
            markers.append(vouched)
    return markers


def any_verified_marker(root: DataRoot, dataset: str) -> bool:
    """Whether one finished shard of the dataset checks out, as `verified_markers` judges; stops at the first
    (a stage's "run X first" check need not read the footer of each of thousands of shards)."""
    return any(_vouched(root, marker) is not None for marker in list_markers(root, dataset))


def shard_files(root: DataRoot, dataset: str) -> list[str]:
    """Paths of the dataset's finished shard files, sorted: only files with a marker that vouches for them.

    A file without a marker (a crash between rename and marker, an orphan of an older run, a file
    copied in by hand) is never read; one with a marker its bytes do not match is not read either, and
    is logged (see `verified_markers`).
    """
    spec = get_schema(dataset)
    return [root.shard_path(dataset, spec.version, m.shard) for m in verified_markers(root, dataset)]


def read_dataset(root: DataRoot, dataset: str) -> pads.Dataset:
    """All finished shards of a dataset as one lazy pyarrow dataset (nothing is loaded until scanned)."""
    spec = get_schema(dataset)
    files = shard_files(root, dataset)
    if not files:
        return pads.dataset(
            pa.table({n: pa.array([], t) for n, t in zip(spec.schema.names, spec.schema.types, strict=True)})
        )
    if root.is_local:
        return pads.dataset(files, schema=spec.schema, format="parquet")
    stripped = [f.split("://", 1)[1] for f in files]
    return pads.dataset(stripped, schema=spec.schema, format="parquet", filesystem=scan_filesystem(root))


# Object stores whose URLs Arrow's own client reads (the scheme s3fs also answers to).
_ARROW_S3_SCHEMES = frozenset({"s3", "s3a"})


def scan_filesystem(root: DataRoot) -> Any:
    """The filesystem a lazy scan of an object-store root reads through: Arrow's own S3 client for s3://
    roots, else the root's fsspec filesystem.

    Through fsspec, Arrow reads Python file objects, and a dataset fragment holding one can be freed last by one
    of Arrow's threads while the interpreter finalizes, which aborts the process after its work is done (see
    `read_parquet_file`). Arrow's S3 client has no Python object to free. It finds its endpoint and
    credentials where s3fs does (the AWS_* variables, ~/.aws); where s3fs has its own settings in fsspec's
    config (`~/.config/fsspec/s3.json`), which Arrow does not read, or Arrow cannot make a client, the scan
    stays on fsspec.
    """
    scheme, rest = root.url.split("://", 1)
    if scheme in _ARROW_S3_SCHEMES and not fsspec.config.conf.get("s3"):
        try:
            native, _ = pafs.FileSystem.from_uri(f"s3://{rest}")
            return native
        except (pa.ArrowException, OSError, ValueError) as exc:
            log.info(
                "data root %s: Arrow's S3 client cannot be used (%s); scanning through fsspec", root.url, exc
            )
    return root.fs


def read_parquet_file(
    root: DataRoot, path: str, columns: list[str] | None = None, schema: pa.Schema | None = None
) -> pa.Table:
    """A whole Parquet file of the root as a table: by its path on a local root, from its bytes in memory on
    an object store; never through a Python file object.

    Arrow reads a Python file object (fsspec's handle) through a dataset fragment that holds it, and a
    fragment can be freed last by one of Arrow's own threads. Freeing it takes the GIL; if that happens
    while the interpreter finalizes, the thread is made to exit, and its unwinding through Arrow's
    destructor ends the process with `terminate called without an active exception` (SIGABRT, exit 134)
    after all its work was done. Seen on `howto export webdataset`, about 1 run in 20 on a busy 2-core
    machine; the native stack showed `PyReadableFile::~PyReadableFile` in a dataset thread during
    `Py_FinalizeEx`.
    """
    if root.is_local:
        return _parse(path, path, columns, schema)
    with root.open(path, "rb") as handle:
        payload = handle.read()  # outside the parse: a network error stays what it is
    return _parse(path, pa.BufferReader(payload), columns, schema)


def _parse(path: str, source: Any, columns: list[str] | None, schema: pa.Schema | None) -> pa.Table:
    """`pq.read_table`, with a damaged file (cut short, garbled, another format) reported as ShardUnreadable
    naming it; a missing or forbidden file stays the OSError it is.

    A local file is memory-mapped rather than read into a buffer: Arrow decodes the pages from the page
    cache as they are, where reading copied each column chunk into fresh memory first (its pages faulted
    one at a time). A clip_pairs shard's 8192 x 4096 float16 vectors read in 56 against 60 ms alone, and
    in a bf16 training epoch the loading fell from 71 to 53 ms a step with this alone, and to 45 ms with
    tasks/train/data.py's single copy of the vectors (tasks/train/run.py `Trainer.pair_windows`). The
    decoded table owns its memory, so it stays valid when the file is replaced or cut short afterwards
    (a test)."""
    try:
        return pq.read_table(source, columns=columns, schema=schema, memory_map=isinstance(source, str))
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno not in (None, errno.EIO):
            raise
        text = " ".join(str(exc).split()) or type(exc).__name__
        # Arrow names the file itself ("Could not open Parquet input source '<path>': ..."): the reason only.
        reason = text.split("': ", 1)[1] if text.startswith("Could not open") and "': " in text else text
        raise ShardUnreadable(
            f"{path}: cannot be read as Parquet ({reason}); rerun the stage that writes it (a damaged shard "
            "is redone)"
        ) from exc


def _element_type(kind: pa.DataType) -> pa.DataType:
    """The type of a column's values, lists (of lists) unwrapped."""
    while pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        kind = kind.value_type
    return kind


def column_compression(schema: pa.Schema) -> dict[str, str]:
    """Each column's codec: zstd, except float16 columns (the feature vectors), stored uncompressed.

    zstd hardly shrinks float16 features, whose bits are mostly mantissa, while decompressing them is a
    quarter of a shard's read, which a training epoch pays for every shard that does not stay in memory.
    An 8192 x 4096 float16 vector column read in 93 ms uncompressed against 122 ms with zstd (64.1 against
    57.1 MiB); the demo's frame features (3457 rows) in 83 against 93 ms, 12.0 against 11.2 MiB; LZ4
    read no faster than no codec and saved as little. Every Parquet reader (DuckDB included) reads an
    uncompressed column, and shards written with zstd before read as they did."""
    return {f.name: "none" if pa.types.is_float16(_element_type(f.type)) else "zstd" for f in schema}


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """The columns worth dictionary encoding: all but floating-point ones (and lists of them).

    Parquet writers dictionary-encode every column by default, and a float16 column never outgrows its
    dictionary (65,536 values at most), so feature vectors were stored as dictionary indices. Reading
    them back that way was 4x slower than plain values (a 4096 x 4096 float16 vector column: 0.41 s
    against 0.11 s), for no gain in size: the indices are as wide as the values."""
    return [f.name for f in schema if not pa.types.is_floating(_element_type(f.type))]


def read_shard(root: DataRoot, dataset: str, shard: int) -> pa.Table | None:
    """One shard as a table, or None if it does not exist; ShardUnreadable (naming the file) if it is damaged."""
    spec = get_schema(dataset)
    path = root.shard_path(dataset, spec.version, shard)
    if not root.exists(path):
        return None
    return read_parquet_file(root, path, schema=spec.schema)


def iter_batches(
    root: DataRoot, dataset: str, columns: list[str] | None = None, batch_size: int = 65_536
) -> Iterator[pa.RecordBatch]:
    """Stream a dataset's rows in record batches without loading it whole."""
    yield from read_dataset(root, dataset).to_batches(columns=columns, batch_size=batch_size)


def delete_shard(root: DataRoot, dataset: str, shard: int) -> None:
    """Remove a shard: its marker first, so a crash in between leaves an unmarked file readers ignore."""
    spec = get_schema(dataset)
    for path in (
        root.marker_path(dataset, spec.version, shard),
        root.shard_path(dataset, spec.version, shard),
    ):
        if root.exists(path):
            root.fs.rm(path)


def remove_shard_temp_files(root: DataRoot, dataset: str, shard: int) -> list[str]:
    """Delete the leftovers of one shard's interrupted writes (its file's and its marker's temp files, and
    no other shard's: they may be writing now); returns their paths."""
    directory = root.dataset_dir(dataset, get_schema(dataset).version)
    removed = []
    for folder in (directory, f"{directory}/_markers"):
        if not root.exists(folder):
            continue
        for path in root.fs.glob(f"{folder}/{atomic.TMP_PREFIX}*-part-{shard:05d}.*"):
            root.fs.rm(path)
            removed.append(path)
    return removed
