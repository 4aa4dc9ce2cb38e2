"""What the stage reads: the kept tasks to search, chunked into deterministic shards."""

from __future__ import annotations

from typing import Any

import pyarrow.compute as pc

from storage.layout import DataRoot
from storage.shards import read_dataset


def kept_tasks(root: DataRoot) -> list[dict[str, Any]]:
    """Kept, ok tasks as `{task_id, title}`, one per task id, sorted by task id."""
    table = read_dataset(root, "tasks").to_table(columns=["task_id", "title", "keep", "status"])
    table = table.filter(pc.and_(pc.equal(table["keep"], True), pc.equal(table["status"], "ok")))
    by_id: dict[str, str] = {}
    for row in table.select(["task_id", "title"]).to_pylist():
        if row["task_id"] and row["title"] and row["task_id"] not in by_id:
            by_id[row["task_id"]] = row["title"]
    return [{"task_id": tid, "title": by_id[tid]} for tid in sorted(by_id)]


def chunk(items: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    """Consecutive chunks of `size` (the last may be shorter)."""
    return [items[i : i + size] for i in range(0, len(items), size)]
