"""Atomic shard writer, completion markers and dataset readers (house rule 1)."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from storage.layout import DataRoot
from storage.schemas import get_schema, validate_table

# Row groups of ~64k rows keep point look-ups (one video's clips) cheap through min/max statistics
# while a full scan still reads big sequential chunks.
ROW_GROUP_SIZE = 65_536
TMP_PREFIX = ".tmp-"


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

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Marker:
        data = json.loads(text)
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


# Test hook: called between the temp write and the rename, so a test can simulate a crash there.
_before_rename_hook: Callable[[str], None] | None = None


def _atomic_write_bytes(root: DataRoot, path: str, payload: bytes) -> None:
    directory = path.rsplit("/", 1)[0]
    root.makedirs(directory)
    tmp = f"{directory}/{TMP_PREFIX}{uuid.uuid4().hex}-{path.rsplit('/', 1)[1]}"
    with root.open(tmp, "wb") as handle:
        handle.write(payload)
    _rename(root, tmp, path)


def _rename(root: DataRoot, tmp: str, final: str) -> None:
    if _before_rename_hook is not None:
        _before_rename_hook(tmp)
    if root.is_local:
        os.replace(tmp, final)  # atomic on POSIX
    else:
        root.fs.mv(tmp, final)


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
    tmp = f"{directory}/{TMP_PREFIX}{uuid.uuid4().hex}-part-{shard:05d}.parquet"
    with root.open(tmp, "wb") as handle:
        pq.write_table(table, handle, row_group_size=ROW_GROUP_SIZE, compression="zstd")
    _rename(root, tmp, path)
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
    )
    _atomic_write_bytes(root, root.marker_path(dataset, spec.version, shard), marker.to_json().encode())
    return marker


def read_marker(root: DataRoot, dataset: str, shard: int) -> Marker | None:
    """The shard's marker, or None if there is none (or it cannot be read)."""
    spec = get_schema(dataset)
    path = root.marker_path(dataset, spec.version, shard)
    if not root.exists(path):
        return None
    try:
        with root.open(path, "rb") as handle:
            return Marker.from_json(handle.read().decode())
    except (ValueError, TypeError, OSError):
        return None


def is_done(root: DataRoot, dataset: str, shard: int, config_hash: str) -> bool:
    """True only if the marker exists, the shard file exists, and the config hash and schema match."""
    spec = get_schema(dataset)
    marker = read_marker(root, dataset, shard)
    if marker is None or marker.config_hash != config_hash or marker.schema_version != spec.version:
        return False
    return root.exists(root.shard_path(dataset, spec.version, shard))


def list_markers(root: DataRoot, dataset: str) -> list[Marker]:
    """All readable markers of a dataset, sorted by shard."""
    spec = get_schema(dataset)
    directory = f"{root.dataset_dir(dataset, spec.version)}/_markers"
    if not root.exists(directory):
        return []
    markers = []
    for path in sorted(root.fs.glob(f"{directory}/part-*.json")):
        shard = int(path.rsplit("part-", 1)[1].split(".")[0])
        marker = read_marker(root, dataset, shard)
        if marker is not None:
            markers.append(marker)
    return markers


def shard_files(root: DataRoot, dataset: str) -> list[str]:
    """Paths of the dataset's visible shard files (temp files never match), sorted."""
    spec = get_schema(dataset)
    paths = sorted(root.fs.glob(root.shard_glob(dataset, spec.version)))
    if root.is_local:
        return paths
    protocol = root.url.split("://", 1)[0]
    return [p if "://" in p else f"{protocol}://{p}" for p in paths]


def read_dataset(root: DataRoot, dataset: str) -> pads.Dataset:
    """All shards of a dataset as one lazy pyarrow dataset (nothing is loaded until scanned)."""
    spec = get_schema(dataset)
    files = shard_files(root, dataset)
    if not files:
        return pads.dataset(
            pa.table({n: pa.array([], t) for n, t in zip(spec.schema.names, spec.schema.types, strict=True)})
        )
    fs = None if root.is_local else root.fs
    stripped = files if root.is_local else [f.split("://", 1)[1] for f in files]
    return pads.dataset(stripped, schema=spec.schema, format="parquet", filesystem=fs)


def read_shard(root: DataRoot, dataset: str, shard: int) -> pa.Table | None:
    """One shard as a table, or None if it does not exist."""
    spec = get_schema(dataset)
    path = root.shard_path(dataset, spec.version, shard)
    if not root.exists(path):
        return None
    with root.open(path, "rb") as handle:
        return pq.read_table(handle, schema=spec.schema)


def iter_batches(
    root: DataRoot, dataset: str, columns: list[str] | None = None, batch_size: int = 65_536
) -> Iterator[pa.RecordBatch]:
    """Stream a dataset's rows in record batches without loading it whole."""
    yield from read_dataset(root, dataset).to_batches(columns=columns, batch_size=batch_size)


def remove_temp_files(root: DataRoot, dataset: str) -> int:
    """Delete leftovers of interrupted writes; returns how many were removed."""
    spec = get_schema(dataset)
    directory = root.dataset_dir(dataset, spec.version)
    removed = 0
    for pattern in (f"{directory}/{TMP_PREFIX}*", f"{directory}/_markers/{TMP_PREFIX}*"):
        for path in root.fs.glob(pattern):
            root.fs.rm(path)
            removed += 1
    return removed
