"""The release's task list as `tasks` rows, a title kept by another import or crawl marked a duplicate."""

from __future__ import annotations

from typing import Any

from storage.layout import DataRoot
from storage.shards import list_markers, read_shard
from tasks.howto100m.layout import IMPORT_SOURCE, is_imported
from tasks.howto100m.release import ReleaseTask
from tasks.tasks.rows import task_row
from tasks.wikihow.titles import dedup_key


def task_rows(tasks: list[ReleaseTask], categories: dict[str, tuple[str | None, str | None]],
              crawl_id: str, seen: set[str]) -> list[dict[str, Any]]:  # fmt: skip
    """All of task_ids.csv kept (it is the published list, no verb filter); a repeated title is a duplicate."""
    seen = set(seen)
    rows = []
    for task in tasks:
        key = dedup_key(task.title)
        cat1, cat2 = categories.get(task.source_id, (None, None))
        path = [c for c in (cat2, cat1) if c]  # leaf ... level-1, as mined tasks store it
        rows.append(task_row(
            title=task.title, source_id=task.source_id, source=IMPORT_SOURCE, crawl_id=crawl_id,
            category_path=path, keep=key not in seen, drop_reason="duplicate" if key in seen else None,
        ))  # fmt: skip
        seen.add(key)
    return rows


def kept_titles_outside(root: DataRoot, batch: str, *, replacing: bool) -> set[str]:
    """De-dup keys of titles kept by other imports and crawls (not this one's earlier run; when `replacing`,
    not the imports it replaces either: they are still there while it runs, and go only once it is done)."""
    keys: set[str] = set()
    for marker in list_markers(root, "tasks"):
        if marker.config.get("import_batch") == batch or (replacing and is_imported(marker)):
            continue
        table = read_shard(root, "tasks", marker.shard)
        if table is not None:
            for title, keep in zip(
                table.column("title").to_pylist(), table.column("keep").to_pylist(), strict=True
            ):
                if keep and title:
                    keys.add(dedup_key(title))
    return keys
