"""What a re-crawl generation changed, compared with the one before it (pure: rows in, rows out).

added: videos first probed in this generation; vanished: known videos a re-check found gone
(`unavailable_since` = this generation); views: videos the search returned in both generations with a
different view count. Caption tracks are known only from a probe, and a re-crawl probes only new and
missing videos, so a caption change of a video still found by search is not seen here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

ADDED, VANISHED, VIEWS = "added", "vanished", "views"


def _views_by_video(hits: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """One view count per video: the highest of its hits (a video may rank for several tasks)."""
    views: dict[str, int] = {}
    for hit in hits:
        vid, count = hit.get("video_id"), hit.get("view_count")
        if vid and count is not None:
            views[vid] = max(views.get(vid, count), int(count))
    return views


def crawl_changes(
    crawl_id: str,
    previous_crawl_id: str | None,
    videos: Iterable[Mapping[str, Any]],
    previous_hits: Iterable[Mapping[str, Any]],
    hits: Iterable[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """The change rows of `crawl_id`, sorted by change then video id.

    `videos`: every `videos` row (all generations); `previous_hits`/`hits`: `search_results` rows of the
    previous and this generation.
    """
    rows = list(videos)
    seen_before = {r["video_id"] for r in rows if r["crawl_id"] < crawl_id and not r.get("unavailable_since")}
    base = {"crawl_id": crawl_id, "previous_crawl_id": previous_crawl_id, "keep": None,
            "views_before": None, "views_after": None}  # fmt: skip
    out: list[dict[str, Any]] = []
    for r in rows:
        if r["crawl_id"] != crawl_id:
            continue
        if r.get("unavailable_since") == crawl_id:
            out.append({**base, "video_id": r["video_id"], "change": VANISHED, "task_id": r.get("task_id")})
        elif not r.get("unavailable_since") and r["video_id"] not in seen_before:
            out.append({**base, "video_id": r["video_id"], "change": ADDED, "task_id": r.get("task_id"),
                        "keep": bool(r["keep"])})  # fmt: skip
    before, after = _views_by_video(previous_hits), _views_by_video(hits)
    tasks = {r["video_id"]: r.get("task_id") for r in rows}
    for vid in sorted(before.keys() & after.keys()):
        if before[vid] != after[vid]:
            out.append({**base, "video_id": vid, "change": VIEWS, "task_id": tasks.get(vid),
                        "views_before": before[vid], "views_after": after[vid]})  # fmt: skip
    order = {ADDED: 0, VANISHED: 1, VIEWS: 2}
    return sorted(out, key=lambda r: (order[r["change"]], r["video_id"]))
