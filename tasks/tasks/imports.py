"""Write an imported task list into the `tasks` dataset, in shards of its own, resumable like any stage."""

from __future__ import annotations

import hashlib
from contextlib import suppress
from pathlib import Path
from typing import Any

from storage.catalog import refresh
from storage.layout import DataRoot
from storage.shards import delete_shard, list_markers, read_dataset
from tasks.common import config_hash, shard_hash
from tasks.shard_runner import ShardJob, ShardOutput, count_errors, drops_by_reason, run_job
from tasks.tasks.rows import imported_rows, rows_to_table
from tasks.tasks.task_lists import ImportedTask, ImportFormatError, read_import
from tasks.wikihow.filters import VisualFilter
from tasks.wikihow.titles import dedup_key

# Imported shards live far above mined ones (shards 0..N of a crawl) so that importing a list and
# mining wikiHow into the same data root never overwrite each other's shards.
IMPORT_SHARD_BASE = 50_000


def import_tasks(
    path: str | Path,
    fmt: str,
    data_root: str | None = None,
    *,
    rules: VisualFilter | None = None,
    crawl_id: str = "crawl-0000",
    shard_size: int = 1000,
    replace: bool = False,
) -> dict[str, Any]:
    """Import a task list file, appended to earlier imports unless `replace`; the same file twice writes nothing.

    Titles already in the `tasks` dataset (an earlier import or a crawl) are kept as rows of this
    import but dropped as "duplicate", so the search stage never searches a task twice.
    """
    rules = rules or VisualFilter()
    items = read_import(path, fmt)
    if not items:  # most likely the wrong file or --format: with --replace it would wipe every import
        raise ImportFormatError(f"no task titles found (format {fmt}); nothing imported or removed")
    root = DataRoot.from_any(data_root)
    file_hash = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    batch = config_hash({"format": fmt, "filters": rules.model_dump(mode="json"), "crawl_id": crawl_id,
                         "shard_size": shard_size, "file": file_hash})  # fmt: skip
    removed = remove_imported_shards(root) if replace else 0
    try:
        summary = _write_import(root, path, fmt, items, rules, crawl_id, shard_size, batch, file_hash)
    except BaseException:
        if removed:  # the catalog's views name the removed files: a query would fail until a refresh
            with suppress(Exception):
                refresh(root)
        raise
    refresh(root)  # the views list shard files by name: new shards show (and removed ones go) at once
    return {**summary, "replaced_shards": removed}


def _write_import(
    root: DataRoot, path: str | Path, fmt: str, items: list[ImportedTask], rules: VisualFilter,
    crawl_id: str, shard_size: int, batch: str, file_hash: str,
) -> dict[str, Any]:  # fmt: skip
    """Write the rows of the list as shards of its import batch (finished ones are reused)."""
    earlier = _import_batches(root)
    base = earlier.get(batch, [_next_import_shard(root)])[0]
    seen = set() if batch in earlier else _existing_titles(root)
    # De-duplication runs over the whole file before it is cut into shards (first title keeps it).
    rows = imported_rows(items, f"import:{fmt}", rules, crawl_id, seen=seen)
    manifests = []
    for index, start in enumerate(range(0, len(rows), shard_size)):
        chunk = rows[start : start + shard_size]

        def compute(_previous: object, chunk: list[dict[str, Any]] = chunk) -> ShardOutput:
            table = rows_to_table(chunk)
            return ShardOutput(
                table, len(chunk), drops_by_reason(table), count_errors(table), {"file": str(path)}
            )

        own = shard_hash(batch, str(index))
        config = {"format": fmt, "file": str(path), "file_sha256": file_hash, "import_batch": batch}
        manifests.append(run_job(root, ShardJob("tasks", base + index, own, compute, config=config)))
    drops: dict[str, int] = {}
    for manifest in manifests:
        for reason, count in manifest["drops"].items():
            drops[reason] = drops.get(reason, 0) + count
    return {
        "stage": "import_tasks",
        "rows": len(rows),
        "kept": sum(1 for r in rows if r["keep"]),
        "drops": dict(sorted(drops.items())),
        "shards": len(manifests),
        "shards_cached": sum(1 for m in manifests if m["cached"]),
        "first_shard": base,
    }


def _import_batches(root: DataRoot) -> dict[str, list[int]]:
    """import batch -> its shard numbers, for every finished imported shard."""
    batches: dict[str, list[int]] = {}
    for marker in list_markers(root, "tasks"):
        batch = marker.config.get("import_batch")
        if marker.shard >= IMPORT_SHARD_BASE and isinstance(batch, str):
            batches.setdefault(batch, []).append(marker.shard)
    return {batch: sorted(shards) for batch, shards in batches.items()}


def _next_import_shard(root: DataRoot) -> int:
    used = [m.shard for m in list_markers(root, "tasks") if m.shard >= IMPORT_SHARD_BASE]
    return max(used) + 1 if used else IMPORT_SHARD_BASE


def _existing_titles(root: DataRoot) -> set[str]:
    """De-dup keys of the titles the dataset already keeps."""
    table = read_dataset(root, "tasks").to_table(columns=["title", "keep"])
    return {dedup_key(t) for t, keep in zip(*table.to_pydict().values(), strict=True) if keep}


def remove_imported_shards(root: DataRoot) -> int:
    """Delete every imported shard."""
    imported = [m.shard for m in list_markers(root, "tasks") if m.shard >= IMPORT_SHARD_BASE]
    for shard in imported:
        delete_shard(root, "tasks", shard)
    return len(imported)
