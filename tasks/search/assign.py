"""Phase B (pure): de-duplicate search hits across tasks and order the videos not seen before."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tasks.youtube.ids import is_video_id


def best_hits(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """For each video kept by the prefilter, the hit where it ranked best; ties go to the smaller task_id."""
    best: dict[str, dict[str, Any]] = {}
    for row in rows:
        vid = row.get("video_id")
        if not (row.get("keep") and row.get("status") == "ok" and is_video_id(vid)):
            continue
        key = (row.get("rank") or 1 << 30, str(row.get("task_id")))
        current = best.get(vid)  # type: ignore[arg-type]
        if current is None or key < (current["rank"] or 1 << 30, str(current["task_id"])):
            best[vid] = {  # type: ignore[index]
                "video_id": vid,
                "task_id": row.get("task_id"),
                "rank": row.get("rank"),
                "url": row.get("url"),
                "title": row.get("title"),
            }
    return best


def new_candidates(best: Mapping[str, dict[str, Any]], seen: set[str]) -> list[dict[str, Any]]:
    """The videos not in `seen`, ordered by task, rank and id so shard contents are reproducible."""
    fresh = [hit for vid, hit in best.items() if vid not in seen]
    return sorted(fresh, key=lambda h: (str(h["task_id"]), h["rank"] or 1 << 30, h["video_id"]))
