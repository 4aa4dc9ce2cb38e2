"""The shard contract, owned here: check inputs, fingerprint, skip or compute, write, mark.

A stage describes one shard as a `ShardJob` (what it writes, which upstream shards it reads, its own
config fingerprint, which earlier rows it may reuse, and a pure compute function); `run_job` does the
rest, the same way for every stage. No stage hashes its inputs or reads its own earlier output itself.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pyarrow as pa

from storage.layout import DataRoot
from storage.schemas import get_schema
from storage.shard_lock import shard_lock
from storage.shards import (
    Marker,
    read_marker,
    read_shard,
    remove_shard_temp_files,
    valid_marker,
    write_shard,
)
from tasks.common import code_version, config_hash, shard_hash
from tasks.interrupts import refuse_after_stop
from tasks.shard_work import drop_shard_work

log = logging.getLogger(__name__)


class UpstreamMissing(FileNotFoundError):
    """An input shard has no valid marker: the stage that writes it has to run first."""


@dataclass(frozen=True)
class ShardInput:
    """An upstream dataset whose shard k this job's shard k reads; `stage` names who writes it."""

    dataset: str
    stage: str
    required: bool = True


@dataclass
class SecondaryOutput:
    """A second table one shard's work produces (e.g. `clips` beside `captions`), marked before the primary."""

    dataset: str
    table: pa.Table
    rows_in: int
    sort_by: list[tuple[str, str]] | None = None


@dataclass
class ShardOutput:
    """What a shard's work produced: the table, how many items went in, drops and errors."""

    table: pa.Table
    rows_in: int
    drops: Mapping[str, int] = field(default_factory=dict)
    errors: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)
    secondary: Sequence[SecondaryOutput] = ()


@dataclass
class ShardJob:
    """One shard of one stage, declared; `run_job` carries it out.

    `own_hash` fingerprints only what this stage itself decides (its output-changing config and,
    for stages fed by a plan rather than a dataset, the plan's listing). Upstream content is added
    by the runner from the input markers. `reusable` picks, from the shard's earlier output made
    under the same `own_hash`, the rows compute may keep instead of redoing (None: reuse nothing).
    """

    dataset: str
    shard: int
    own_hash: str
    compute: Callable[[pa.Table | None], ShardOutput]
    inputs: Sequence[ShardInput] = ()
    reusable: Callable[[pa.Table], pa.Table] | None = None
    sort_by: list[tuple[str, str]] | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    secondaries: Sequence[str] = ()  # datasets compute also emits (as `ShardOutput.secondary`)
    # compute keeps what outlives one run of the shard in its work folders (tasks/shard_work.py): they go
    # once the shard is done with no row left to retry (the folder of `own_hash` stays while one is).
    work_folders: bool = False


def drops_by_reason(table: pa.Table, column: str = "drop_reason") -> dict[str, int]:
    """Count the rows of each non-null drop reason."""
    if column not in table.column_names:
        return {}
    return dict(Counter(r for r in table.column(column).to_pylist() if r))


def count_errors(table: pa.Table) -> int:
    if "status" not in table.column_names:
        return 0
    return sum(1 for s in table.column("status").to_pylist() if s == "error")


def content_fingerprint(marker: Marker) -> str:
    """An input shard's content: any rewrite of it (a retry that recovered rows too) changes this."""
    return config_hash({"c": marker.config_hash, "rows": marker.rows_out, "at": marker.finished_at})


def input_fingerprints(root: DataRoot, shard: int, inputs: Sequence[ShardInput]) -> dict[str, str]:
    """dataset -> content fingerprint of each input's shard k; a missing required input raises."""
    prints: dict[str, str] = {}
    for spec in inputs:
        marker = valid_marker(root, spec.dataset, shard)
        if marker is None:
            if spec.required:
                raise UpstreamMissing(f"{spec.dataset} shard {shard} is not finished: run {spec.stage} first")
            prints[spec.dataset] = "-"
            continue
        prints[spec.dataset] = content_fingerprint(marker)
    return prints


def job_fingerprint(own_hash: str, prints: Mapping[str, str]) -> str:
    return shard_hash(own_hash, *(f"{name}={value}" for name, value in sorted(prints.items())))


def fingerprint_of(root: DataRoot, job: ShardJob) -> str:
    """The hash a finished shard's marker must carry for `job` to be skipped."""
    return job_fingerprint(job.own_hash, input_fingerprints(root, job.shard, job.inputs))


def run_job(root: DataRoot, job: ShardJob) -> dict[str, Any]:
    """Return a small manifest; `cached` is True when the marker already matched and nothing ran.

    A shard whose marker records per-row errors is not treated as done, so the next run retries it
    (compute gets the reusable rows and redoes only the rest).

    The shard is held while it is checked and written (storage/shard_lock.py): a second run that reaches
    it meanwhile waits, then finds it done; its temp files, removed here, are then a dead writer's.
    """
    # Ctrl-C or SIGTERM ends the wait: the shard is left to the run that writes it.
    stop = partial(refuse_after_stop, f"{job.dataset} shard {job.shard} left to the run writing it")
    with shard_lock(root, job.dataset, job.shard, stop):
        manifest = _run_job_held(root, job)
        if job.work_folders:  # held still: a run waiting for the shard never finds its folder half removed
            drop_shard_work(
                root, job.dataset, job.shard, keep_hash=job.own_hash if manifest["errors"] else None
            )
        return manifest


def _run_job_held(root: DataRoot, job: ShardJob) -> dict[str, Any]:
    prints = input_fingerprints(root, job.shard, job.inputs)
    fingerprint = job_fingerprint(job.own_hash, prints)
    marker = valid_marker(root, job.dataset, job.shard)
    secondaries = {name: valid_marker(root, name, job.shard) for name in job.secondaries}
    if (
        marker is not None
        and marker.config_hash == fingerprint
        and marker.errors == 0
        and all(m is not None and m.config_hash == fingerprint for m in secondaries.values())
    ):
        manifest = _manifest(job.dataset, job.shard, marker, cached=True)
        manifest.update({name: m.rows_out for name, m in secondaries.items() if m is not None})
        return manifest
    _say_why_unmarked(root, job, marker)
    _remove_own_temp_files(root, job)
    previous = _reusable_rows(root, job, marker)
    started = time.time()
    out = job.compute(previous)
    undeclared = {o.dataset for o in out.secondary} - set(job.secondaries)
    if undeclared:
        raise ValueError(
            f"{job.dataset} shard {job.shard}: undeclared secondary outputs {sorted(undeclared)}"
        )
    common: dict[str, Any] = {
        "config_hash": fingerprint,
        "code_version": code_version(),
        "started_at": started,
        "own_hash": job.own_hash,
        "inputs": prints,
        "config": dict(job.config),
    }
    # Secondary tables first: the primary marker is the proof that the whole shard is done.
    for extra_out in out.secondary:
        write_shard(
            root, extra_out.dataset, job.shard, extra_out.table,
            rows_in=extra_out.rows_in, sort_by=extra_out.sort_by, **common,
        )  # fmt: skip
    written = write_shard(
        root, job.dataset, job.shard, out.table, rows_in=out.rows_in, drops=out.drops, errors=out.errors,
        extra=out.extra, sort_by=job.sort_by, **common,
    )  # fmt: skip
    manifest = _manifest(job.dataset, job.shard, written, cached=False)
    for extra_out in out.secondary:
        manifest[extra_out.dataset] = extra_out.table.num_rows
    return manifest


def _say_why_unmarked(root: DataRoot, job: ShardJob, marker: Marker | None) -> None:
    """A shard file with no marker is redone: say so, naming the file (a damaged file under a marker is
    logged where the marker is checked)."""
    if marker is not None or read_marker(root, job.dataset, job.shard) is not None:
        return
    path = root.shard_path(job.dataset, get_schema(job.dataset).version, job.shard)
    if root.exists(path):
        log.warning(
            "%s shard %d (%s): no marker vouches for this file (a crash between its rename and its marker, "
            "or the marker removed); the shard is redone",
            job.dataset, job.shard, path,
        )  # fmt: skip


def _reusable_rows(root: DataRoot, job: ShardJob, marker: Marker | None) -> pa.Table | None:
    """Earlier rows of this shard made under the same own config (upstream may have changed since)."""
    if job.reusable is None or marker is None or not marker.own_hash or marker.own_hash != job.own_hash:
        return None
    table = read_shard(root, job.dataset, job.shard)
    return job.reusable(table) if table is not None else None


def _remove_own_temp_files(root: DataRoot, job: ShardJob) -> None:
    """Leftovers of this shard's interrupted writes (only its own: other shards may be writing now)."""
    for dataset in [job.dataset, *job.secondaries]:
        for path in remove_shard_temp_files(root, dataset, job.shard):
            log.info("%s shard %d: removed leftover %s", dataset, job.shard, path.rsplit("/", 1)[1])


def _manifest(dataset: str, shard: int, marker: Marker, *, cached: bool) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "shard": shard,
        "rows_in": marker.rows_in,
        "rows_out": marker.rows_out,
        "drops": dict(marker.drops),
        "errors": marker.errors if not cached else 0,
        "cached": cached,
    }
