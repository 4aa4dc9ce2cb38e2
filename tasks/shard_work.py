"""A shard's work folder under the data root: `_work/<dataset>/part-NNNNN-<own hash>/`, where a stage keeps what
outlives one run of the shard (the features stage's finished videos and decode failures, the tasks stage's
aborted parses) until the shard is written with nothing left to retry.

The stage's own config hash is in the name, so nothing made under another config is mixed into a shard. The
flip side: once a shard is written under a new hash, the folders of its older hashes are never read again,
and they are removed then (parked features of a shard can be hundreds of MB)."""

from __future__ import annotations

from storage.layout import DataRoot

_PREFIX = "part-"


def shard_work_dir(root: DataRoot, dataset: str, shard: int, own_hash: str) -> str:
    return root.path("_work", dataset, f"{_PREFIX}{shard:05d}-{own_hash}")


def shard_work_dirs(root: DataRoot, dataset: str, shard: int) -> list[str]:
    """Every work folder of the shard, whatever its hash (sorted)."""
    stage = root.path("_work", dataset)
    if not root.exists(stage):
        return []
    prefix = f"{_PREFIX}{shard:05d}-"
    return sorted(p for p in root.fs.ls(stage, detail=False) if _name(p).startswith(prefix))


def drop_shard_work(root: DataRoot, dataset: str, shard: int, keep_hash: str | None = None) -> list[str]:
    """Remove the shard's work folders, all but that of `keep_hash` (still needed: the shard has rows to retry),
    once the shard is written. The stage's folder above them stays: another shard may be writing there.
    Returns the folders removed."""
    keep = f"{_PREFIX}{shard:05d}-{keep_hash}" if keep_hash is not None else None
    gone = [p for p in shard_work_dirs(root, dataset, shard) if _name(p) != keep]
    for path in gone:
        root.fs.rm(path, recursive=True)
    return gone


def _name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]
