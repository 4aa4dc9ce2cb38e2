"""A replacing import out of sight until it has finished: its shard files land in place, its markers wait aside.

`howto import howto100m --replace` must not drop the import it replaces before the new one has fully
succeeded (a caption.json broken 3 GB in would leave the user with nothing). So the new import writes its
Parquet files at fresh shard numbers, where readers never look at them (no marker vouches for them), and its
markers beside its plan. Once every shard is done, the old import is removed and the markers are moved in:
moving small JSON files, never the data (a rename here, one small copy per marker on an object store).
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.atomic import fsync_dir
from storage.layout import DataRoot
from storage.schemas import get_schema
from storage.shards import Marker, list_markers
from tasks.howto100m.layout import STAGED_SUFFIX, plans_dir, remove_plan, staging_dir

# The import's datasets, `videos` last: its marker is the proof that the whole shard is done.
PUBLISH_ORDER = ("tasks", "captions", "clips", "frame_features", "videos")


@dataclass(frozen=True)
class StagedRoot(DataRoot):
    """The data root, with markers kept in `staging` instead of beside the shards (see the module doc)."""

    staging: str = ""

    def marker_path(self, dataset: str, version: int, shard: int) -> str:
        return DataRoot(self.staging).marker_path(dataset, version, shard)


def staged_root(root: DataRoot, batch: str) -> StagedRoot:
    return StagedRoot(root.url, staging_dir(root, batch))


def _staged_markers(root: DataRoot, batch: str, dataset: str) -> list[Marker]:
    """The batch's markers of `dataset` not published yet."""
    return list_markers(DataRoot(staging_dir(root, batch)), dataset)


def staged_batches(root: DataRoot) -> set[str]:
    """Batches with a staging folder: replacing imports that stopped (killed, or crashed) before their swap."""
    folder = plans_dir(root)
    if not root.exists(folder):
        return set()
    names = (p.rstrip("/").rsplit("/", 1)[-1] for p in root.fs.ls(folder, detail=False))
    return {n.removesuffix(STAGED_SUFFIX) for n in names if n.endswith(STAGED_SUFFIX)}


def publish(root: DataRoot, batch: str) -> int:
    """Move the batch's staged markers beside their shards; returns how many. Idempotent: a swap that a kill
    cut short is finished by the next run (the markers still staged are moved then)."""
    staged, moved = staged_root(root, batch), 0
    for dataset in PUBLISH_ORDER:
        folder = ""
        for marker in _staged_markers(root, batch, dataset):
            where = (dataset, marker.schema_version, marker.shard)
            target = root.marker_path(*where)
            folder = target.rsplit("/", 1)[0]
            root.makedirs(folder)
            root.fs.mv(staged.marker_path(*where), target)
            moved += 1
        if folder and root.is_local:
            # The renames made durable, a dataset's folder at a time, before the next dataset's: the
            # `videos` markers, which vouch for the whole shard, land last.
            fsync_dir(folder)
    _remove_staging(root, batch)
    return moved


def discard(root: DataRoot, batch: str) -> int:
    """Delete what a staged batch wrote (its shard files, its markers, its plan); returns the shards removed.

    A file is removed only where no published marker vouches for it: another import may have taken that
    shard number since this batch stopped.
    """
    removed = 0
    for marker in (m for dataset in PUBLISH_ORDER for m in _staged_markers(root, batch, dataset)):
        version = get_schema(marker.dataset).version
        path = root.shard_path(marker.dataset, version, marker.shard)
        if not root.exists(root.marker_path(marker.dataset, version, marker.shard)) and root.exists(path):
            root.fs.rm(path)
            removed += 1
    _remove_staging(root, batch)
    remove_plan(root, batch)
    return removed


def _remove_staging(root: DataRoot, batch: str) -> None:
    folder = staging_dir(root, batch)
    if root.exists(folder):
        root.fs.rm(folder, recursive=True)
