"""Run one shard: skip it if its marker matches, else compute, write atomically and mark."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from storage.layout import DataRoot
from storage.shards import is_done, read_marker, write_shard


@dataclass
class ShardOutput:
    """What a shard's work produced: the table, how many items went in, drops and errors."""

    table: pa.Table
    rows_in: int
    drops: Mapping[str, int] = field(default_factory=dict)
    errors: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)


def drops_by_reason(table: pa.Table, column: str = "drop_reason") -> dict[str, int]:
    """Count the rows of each non-null drop reason."""
    if column not in table.column_names:
        return {}
    return dict(Counter(r for r in table.column(column).to_pylist() if r))


def count_errors(table: pa.Table) -> int:
    if "status" not in table.column_names:
        return 0
    return sum(1 for s in table.column("status").to_pylist() if s == "error")


def run_shard(
    root: DataRoot,
    dataset: str,
    shard: int,
    config_hash: str,
    code_version: str,
    compute: Callable[[], ShardOutput],
    *,
    sort_by: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """Return a small manifest; `cached` is True when the marker already matched and nothing ran.

    A shard whose marker records per-row errors is not treated as done, so the next run retries it
    (the compute function is expected to reuse the shard's ok rows and retry only the failed items).
    """
    marker = read_marker(root, dataset, shard)
    if is_done(root, dataset, shard, config_hash) and marker is not None and marker.errors == 0:
        return _manifest(dataset, shard, marker.rows_in, marker.rows_out, dict(marker.drops), 0, cached=True)
    started = time.time()
    out = compute()
    written = write_shard(
        root,
        dataset,
        shard,
        out.table,
        config_hash=config_hash,
        code_version=code_version,
        rows_in=out.rows_in,
        drops=out.drops,
        errors=out.errors,
        started_at=started,
        extra=out.extra,
        sort_by=sort_by,
    )
    return _manifest(
        dataset, shard, written.rows_in, written.rows_out, dict(written.drops), written.errors, cached=False
    )


def _manifest(
    dataset: str, shard: int, rows_in: int, rows_out: int, drops: dict[str, int], errors: int, *, cached: bool
) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "shard": shard,
        "rows_in": rows_in,
        "rows_out": rows_out,
        "drops": drops,
        "errors": errors,
        "cached": cached,
    }
