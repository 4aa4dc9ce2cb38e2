"""Where an import's shards go: its plan (shard bases fixed on the first run) and which shards are imported."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from storage.atomic import atomic_write_bytes
from storage.layout import DataRoot
from storage.shards import Marker, list_markers
from tasks.search.plans import (
    IMPORT_PLANS,
    PLANS_DIR,
    ImportInProgress,
    describe_import,
    next_video_shard,
    planned_video_ids,
    unfinished_imports,
)
from tasks.tasks.imports import IMPORT_SHARD_BASE

IMPORT_SOURCE = "import:howto100m"


class ShardTaken(RuntimeError):
    """A shard number the import planned to use holds another stage's shard: nothing is overwritten."""


def is_imported(marker: Marker) -> bool:
    """True for a shard this import wrote (its marker's config says so)."""
    return marker.config.get("source") == IMPORT_SOURCE


def crawled_video_shards(root: DataRoot) -> list[int]:
    """`videos` shards the captions and features stages work on: every one but the imported ones,
    whose captions, clips and features came with the release and must not be redone from the web."""
    return [m.shard for m in list_markers(root, "videos") if not is_imported(m)]


def video_ids_outside(root: DataRoot, batch: str, *, replacing: bool) -> set[str]:
    """Videos the root holds outside this import: crawled ones (probed, or planned by a crawl under way) and
    other imports' (not, when `replacing`, the imports it replaces: they go at its swap).

    A crawl skips every video the root holds, imported ones too (tasks/search/plans.seen_video_ids); an
    import skips these, the same rule the other way, so no video has two `videos` rows, two sets of clips,
    or counts twice. Stable over an unfinished import's reruns: no crawl or other import starts meanwhile.
    """
    from storage.schemas import get_schema
    from storage.shards import read_parquet_file

    held = planned_video_ids(root)
    version = get_schema("videos").version
    for marker in list_markers(root, "videos"):
        if marker.config.get("import_batch") == batch or (replacing and is_imported(marker)):
            continue
        path = root.shard_path("videos", version, marker.shard)
        if root.exists(path):
            ids = read_parquet_file(root, path, columns=["video_id"]).column("video_id").to_pylist()
            held.update(v for v in ids if v)
    return held


def plans_dir(root: DataRoot) -> str:
    """The imports' plans, and the markers of a replacing import until its swap (tasks/howto100m/staging.py)."""
    return root.path(PLANS_DIR, IMPORT_PLANS)


def _plan_path(root: DataRoot, batch: str) -> str:
    return f"{plans_dir(root)}/{batch}.json"


STAGED_SUFFIX = ".staged"


def staging_dir(root: DataRoot, batch: str) -> str:
    return f"{plans_dir(root)}/{batch}{STAGED_SUFFIX}"


def plan_exists(root: DataRoot, batch: str) -> bool:
    """True once the batch's shard bases are fixed: its next run is a rerun (it resumes)."""
    return bool(root.exists(_plan_path(root, batch)))


def unfinished_import_of_other_files(root: DataRoot, batch: str) -> dict[str, Any] | None:
    """The plan of an import of other files than `batch`'s that has not finished (the oldest), if any."""
    return next((plan for plan in unfinished_imports(root) if plan.get("batch") != batch), None)


def check_can_start(root: DataRoot, batch: str) -> None:
    """ImportInProgress while an import of other files into `root` has not finished (a rerun of `batch`, whose
    plan is there, resumes: see load_plan). Nothing is written."""
    if not plan_exists(root, batch):
        _check_alone(root, batch)


def _check_alone(root: DataRoot, batch: str) -> None:
    """ImportInProgress while an import of other files into `root` has not finished: the shard numbers it will
    take are known only at its end, so this one cannot fix its own."""
    other = unfinished_import_of_other_files(root, batch)
    if other is None:
        return
    raise ImportInProgress(
        f"{root.url}: an import of other HowTo100M files ({describe_import(other)}) has not finished, and the "
        "videos shard numbers it will take are not known until it has: let it finish if it is running, or run "
        f"it again (the same files and options: it resumes); then run this one (batch {batch}) with --replace "
        f"to replace it (if that import is not running and is to be dropped unfinished, delete "
        f"{_plan_path(root, str(other.get('batch')))} first)"
    )


def load_plan(root: DataRoot, batch: str, captions: str | None = None) -> dict[str, Any]:
    """The import's shard bases: read back on a rerun (same shards), fixed now on the first run.

    A first run is refused (ImportInProgress) while an import of other files into the root has not finished,
    before anything is written. Two first runs at the same moment are kept apart with no lock (an object
    store has none): each writes its plan and then looks for the other's unfinished plan, taking its own back
    and refused if there is one. If both looked before the other wrote, each look came before the other's
    write and after its own: impossible. So at least one sees the other (both may, in a narrow window: a
    rerun then goes ahead). A rerun does not look: another import that started since has seen its plan.
    """
    path = _plan_path(root, batch)
    if root.exists(path):
        with root.open(path, "rb") as handle:
            return dict(json.loads(handle.read().decode()))
    _check_alone(root, batch)  # the common case, refused before anything is written
    used_tasks = [m.shard for m in list_markers(root, "tasks") if m.shard >= IMPORT_SHARD_BASE]
    plan: dict[str, Any] = {
        "batch": batch,
        "videos_base": next_video_shard(root),
        "tasks_base": max(used_tasks) + 1 if used_tasks else IMPORT_SHARD_BASE,
        "created_at": time.time(),
    }
    if captions is not None:
        plan["captions"] = captions  # named when this import holds up another
    save_plan(root, plan)
    try:
        _check_alone(root, batch)
    except ImportInProgress:
        remove_plan(root, batch)  # nothing was written at its numbers yet: they stay the other import's
        raise
    # A crawl that numbered its shards before this plan was written, and wrote them after the base was
    # taken, may not have seen this plan (tasks/search/plans.py append_video_plans): its plans are in
    # the range now, and the base moves past them. Looked for after the plan is written, never before.
    while (after := next_video_shard(root)) > plan["videos_base"]:
        plan = {**plan, "videos_base": after}
        save_plan(root, plan)
    return plan


def remove_plan(root: DataRoot, batch: str) -> None:
    """Forget an import batch's shard bases (after its shards were removed)."""
    path = _plan_path(root, batch)
    if root.exists(path):
        root.fs.rm(path)


def save_plan(root: DataRoot, plan: dict[str, Any]) -> None:
    atomic_write_bytes(
        root, _plan_path(root, plan["batch"]), json.dumps(plan, sort_keys=True, indent=1).encode()
    )


def check_free(root: DataRoot, dataset: str, shard: int, batch: str) -> None:
    """Refuse to write over a shard some other stage (or another import) finished at this number."""
    from storage.shards import read_marker

    marker = read_marker(root, dataset, shard)
    if marker is not None and marker.config.get("import_batch") != batch:
        raise ShardTaken(
            f"{dataset} shard {shard} was written by {marker.config.get('source') or 'another stage'}; "
            "finish one import before starting another or crawling into the same data root"
        )


IMPORT_DATASETS = ("tasks", "videos", "captions", "clips", "frame_features")
# Made from imported shards by the training stage; dropped with them so no stale pair is trained on.
DERIVED_DATASETS = ("clip_pairs", "text_embeddings")


def imported_batches(root: DataRoot) -> dict[str, set[int]]:
    """Import batch -> the `videos` shard numbers it wrote (tasks shards not included)."""
    batches: dict[str, set[int]] = {}
    for marker in list_markers(root, "videos"):
        if is_imported(marker):
            batches.setdefault(str(marker.config.get("import_batch")), set()).add(marker.shard)
    return batches


def remove_imports(root: DataRoot, keep_batch: str | None = None) -> int:
    """Delete every imported shard of other batches (marker first, so a crash leaves only invisible files)."""
    return _remove_shards(root, lambda batch, _shard: batch != keep_batch)


def remove_batch(root: DataRoot, batch: str) -> int:
    """Delete the shards of one import batch and what was derived from its videos: an import that stopped on
    a broken release file leaves nothing behind, so the corrected file imports without --replace."""
    return _remove_shards(root, lambda other, _shard: other == batch)


def remove_batch_shards_from(root: DataRoot, batch: str, first: int) -> int:
    """Delete the batch's `videos` shards numbered `first` and up, with their captions, clips, features and
    derived pairs (its `tasks` shards are numbered apart and kept): an earlier run of the same files left
    more shards than this run made, as one by a version that did not skip the videos a crawl holds did."""
    return _remove_shards(root, lambda other, shard: other == batch and shard >= first, keep_tasks=True)


def _remove_shards(
    root: DataRoot, doomed: Callable[[str | None, int], bool], *, keep_tasks: bool = False
) -> int:
    from storage.schemas import get_schema

    removed = 0
    video_shards = {s for b, shards in imported_batches(root).items() for s in shards if doomed(b, s)}
    for dataset in (*IMPORT_DATASETS, *DERIVED_DATASETS):
        if keep_tasks and dataset == "tasks":
            continue
        version = get_schema(dataset).version
        for marker in list_markers(root, dataset):
            mine = is_imported(marker) and doomed(marker.config.get("import_batch"), marker.shard)
            derived = dataset in DERIVED_DATASETS and marker.shard in video_shards
            if not (mine or derived):
                continue
            root.fs.rm(root.marker_path(dataset, version, marker.shard))
            path = root.shard_path(dataset, version, marker.shard)
            if root.exists(path):
                root.fs.rm(path)
            removed += 1
    return removed
