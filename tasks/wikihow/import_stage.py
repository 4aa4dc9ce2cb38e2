"""Write an imported task list into the `tasks` dataset, in shards of its own, resumable like any stage."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from storage.layout import DataRoot
from tasks.common import config_hash, shard_hash
from tasks.shard_runner import ShardJob, ShardOutput, count_errors, drops_by_reason, run_job
from tasks.wikihow.filters import VisualFilter
from tasks.wikihow.imports import read_import
from tasks.wikihow.rows import imported_rows, rows_to_table

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
) -> dict[str, Any]:
    """Import a task list file; a second import of the same file and settings writes nothing."""
    rules = rules or VisualFilter()
    items = read_import(path, fmt)
    root = DataRoot.from_any(data_root)
    file_hash = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    own_hash = config_hash({"format": fmt, "filters": rules.model_dump(mode="json"), "crawl_id": crawl_id,
                            "shard_size": shard_size})  # fmt: skip
    # De-duplication runs over the whole file before it is cut into shards (first title keeps it).
    rows = imported_rows(items, f"import:{fmt}", rules, crawl_id)
    manifests = []
    for index, start in enumerate(range(0, len(rows), shard_size)):
        chunk = rows[start : start + shard_size]

        def compute(_previous: object, chunk: list[dict[str, Any]] = chunk) -> ShardOutput:
            table = rows_to_table(chunk)
            return ShardOutput(
                table, len(chunk), drops_by_reason(table), count_errors(table), {"file": str(path)}
            )

        own = shard_hash(own_hash, file_hash, str(index))
        manifests.append(run_job(root, ShardJob("tasks", IMPORT_SHARD_BASE + index, own, compute,
                                                config={"format": fmt, "file": str(path)})))  # fmt: skip
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
    }
