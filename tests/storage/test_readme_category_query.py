"""The README's category query (videos joined with their task) counts each video once, though `tasks` holds
several rows for a task: a repeated title (dropped as duplicate) and a re-crawl's row (kept or not)."""

from __future__ import annotations

import re
from pathlib import Path

from storage.catalog import query, refresh
from storage.layout import DataRoot
from storage.shards import write_shard
from tests.storage.catalog_data import rows_table

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_category_query() -> str:
    """The SQL of the README's `howto query` line that joins `tasks`."""
    found = re.findall(r'^howto query "(.*JOIN \(SELECT \* FROM tasks.*)"$', README.read_text(), re.MULTILINE)
    assert len(found) == 1, found
    return str(found[0])


def _task(task_id: str, category: str, keep: bool, crawl_id: str, **more: object) -> dict[str, object]:
    return {"task_id": task_id, "title": task_id, "category_path": ["Leaf", category], "keep": keep,
            "status": "ok", "crawl_id": crawl_id, **more}  # fmt: skip


def test_each_video_counts_once_though_tasks_repeat(tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path / "data")
    tasks = [
        _task("t1", "Food and Entertaining", True, "c0"),
        _task("t1", "Food and Entertaining", False, "c0", drop_reason="duplicate"),  # a repeated title
        _task("t1", "Food and Entertaining", True, "c1"),  # a re-crawl found it again
        _task("t2", "Home and Garden", True, "c0"),
        _task("t2", "Home and Garden", False, "c1", status="error", error="timeout"),  # a re-crawl failed
    ]
    write_shard(root, "tasks", 0, rows_table("tasks", tasks), config_hash="h", code_version="x", rows_in=5)
    videos = [
        {"video_id": v, "task_id": t, "keep": keep, "status": "ok", "crawl_id": "c0"}
        for v, t, keep in [("a" * 11, "t1", True), ("b" * 11, "t1", True), ("c" * 11, "t2", True),
                           ("d" * 11, "t2", False)]
    ]  # fmt: skip
    write_shard(root, "videos", 0, rows_table("videos", videos), config_hash="h", code_version="x", rows_in=4)
    refresh(root)
    sql = readme_category_query()
    assert query(sql, root).rows == [("Food and Entertaining", 2), ("Home and Garden", 1)]
    # what the README said before: a plain join counts a video once per row of its task
    naive = (
        sql.split(" FROM ")[0]
        + " FROM video_catalog v JOIN tasks t USING (task_id) WHERE v.keep GROUP BY 1 ORDER BY 2 DESC"
    )
    assert query(naive, root).rows == [("Food and Entertaining", 6), ("Home and Garden", 2)]
