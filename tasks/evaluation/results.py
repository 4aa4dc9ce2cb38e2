"""Recording an evaluation: the `eval_metrics` shard (through the shard runner) and the model card.

One shard per (run, benchmark, split), whose fingerprint covers the checkpoint file, the benchmark
files and the options: evaluating the same thing twice reads the rows back and scores nothing.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from storage.layout import ROOT_ERRNOS, DataRoot, DataRootProblem, check_data_root, describe_os_error
from storage.schemas import get_schema
from storage.shards import read_marker, read_shard
from tasks.common import config_hash
from tasks.evaluation.embedder import CheckpointRef
from tasks.evaluation.scoring import Scores
from tasks.shard_runner import ShardJob, ShardOutput, run_job
from tasks.train.report import add_evaluation

DATASET = "eval_metrics"


@dataclass
class EvalResult:
    """An evaluation's rows (eval_metrics schema), whether they were cached, and the card's path."""

    benchmark: str
    split: str
    checkpoint: CheckpointRef
    rows: list[dict[str, Any]]
    cached: bool
    card: str = ""
    features: dict[str, int] = field(default_factory=dict)

    def value(self, metric: str, tie_rule: str | None = "against") -> float | None:
        for row in self.rows:
            if row["metric"] == metric and row["tie_rule"] in (tie_rule, None):
                return float(row["value"])
        return None


def digest_files(paths: Iterable[Path]) -> str:
    """Content hash of small files (annotations, csvs, released features), in the given order."""
    h = hashlib.sha256()
    for path in paths:
        h.update(str(path.name).encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def digest_listing(videos: dict[str, Path]) -> str:
    """Names and sizes of the video files found (their features are cached by the same listing)."""
    blob = "|".join(f"{vid}:{p.stat().st_size}" for vid, p in sorted(videos.items()))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _checkpoint_identity(root: DataRoot, path: str) -> str:
    """Path, size and modification time: a checkpoint rewritten under the same name is evaluated anew. On an
    object store, where os.stat sees nothing (the path alone kept the scores of a replaced file), fsspec's
    checksum of the object's current version (its ETag, size and time)."""
    if os.path.exists(path):  # a local root's checkpoint, or a local file outside the root
        stat = os.stat(path)
        return f"{path}:{stat.st_size}:{stat.st_mtime_ns}"
    if not root.is_local and root.exists(path):
        return f"{path}:{root.fs.checksum(path)}"
    return path  # an embedder handed in directly (tests)


def _recorded_under(
    root: DataRoot, shard: int, identity: str, fingerprints: list[dict[str, Any]]
) -> dict[str, Any]:
    """The first of `fingerprints` the shard's recorded evaluation was made under, else the first (today's):
    a record of older code is then read back, not scored again."""
    marker = read_marker(root, DATASET, shard)
    if marker is None:
        return fingerprints[0]
    for fingerprint in fingerprints:
        if marker.own_hash == config_hash({"checkpoint": identity, **fingerprint}):
            return fingerprint
    return fingerprints[0]


def eval_shard(run_id: str, benchmark: str, split: str) -> int:
    """The eval_metrics shard of one (run, benchmark, split): the latest evaluation replaces the last."""
    return int.from_bytes(hashlib.sha1(f"{run_id}|{benchmark}|{split}".encode()).digest()[:3], "big")


def record(
    root: DataRoot,
    ckpt: CheckpointRef,
    benchmark: str,
    split: str,
    source: str,
    fingerprint: dict[str, Any],
    compute: Callable[[], Scores],
    earlier: Sequence[dict[str, Any]] = (),
) -> EvalResult:
    """Score (unless this exact evaluation is already recorded), write eval_metrics and the model card.
    `earlier`: fingerprints older code gave this same evaluation; one recorded under them is read back."""
    identity = _checkpoint_identity(root, ckpt.path)
    shard = eval_shard(ckpt.run_id, benchmark, split)
    fingerprint = _recorded_under(root, shard, identity, [fingerprint, *earlier])
    own = config_hash({"checkpoint": identity, **fingerprint})
    # Refused before any scoring: a read-only root (a shared mount, a snapshot) could not keep the result.
    try:
        check_data_root(root, write=True, min_free_bytes=0)
    except DataRootProblem as exc:
        raise DataRootProblem(
            f"{exc}; an evaluation is recorded there (eval_metrics, the model card)"
        ) from exc

    def work(_previous: pa.Table | None) -> ShardOutput:
        scores = compute()
        rows = [
            {"run_id": ckpt.run_id, "checkpoint": ckpt.path, "benchmark": benchmark, "split": split,
             "source": source, **row}
            for row in scores.rows
        ]  # fmt: skip
        table = pa.Table.from_pylist(rows, schema=get_schema(DATASET).schema)
        return ShardOutput(
            table=table, rows_in=len(rows), extra={"run_id": ckpt.run_id, "benchmark": benchmark}
        )

    try:
        manifest = run_job(root, ShardJob(DATASET, shard, own, work, config=dict(fingerprint)))
    except OSError as exc:
        if exc.errno in ROOT_ERRNOS:  # the root filled up or turned read-only while scoring
            raise DataRootProblem(describe_os_error(root.url, exc)) from exc
        raise
    table = read_shard(root, DATASET, shard)
    rows = table.to_pylist() if table is not None else []
    entry = {
        "checkpoint": ckpt.path,
        "source": source,
        "metrics": {r["metric"]: r["value"] for r in rows if r["tie_rule"] in ("against", None)},
        "metrics_ties_optimistic": {r["metric"]: r["value"] for r in rows if r["tie_rule"] == "optimistic"},
        "n": max((int(r["n"]) for r in rows), default=0),
        "tie_rule": "against",
    }
    card = add_evaluation(root, ckpt.run_id, f"{benchmark}/{split}", entry)
    return EvalResult(benchmark, split, ckpt, rows, bool(manifest["cached"]), card)
