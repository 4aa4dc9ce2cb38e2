"""What a re-crawl generation changed, compared with the one before it (pure: rows in, rows out).

added: videos first probed in this generation; vanished: known videos a re-check found gone
(`unavailable_since` = this generation); views: videos the search returned in both generations with a
different view count; captions: known videos a re-check probed again (`captions_seen`, from the re-check
shards' markers) whose English captions (manual / auto / translated_only / none) differ from what was last
known: their `videos` row, updated by the re-checks of earlier generations; returned: videos gone (a re-check
found them unavailable) that this generation's re-check saw again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tasks.youtube.decision import recorded_caption_state

ADDED, VANISHED, RETURNED, VIEWS, CAPTIONS = "added", "vanished", "returned", "views", "captions"


def _views_by_video(hits: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """One view count per video: the highest of its hits (a video may rank for several tasks)."""
    views: dict[str, int] = {}
    for hit in hits:
        vid, count = hit.get("video_id"), hit.get("view_count")
        if vid and count is not None:
            views[vid] = max(views.get(vid, count), int(count))
    return views


def gone_before(
    crawl_id: str, videos: Iterable[Mapping[str, Any]], returned: Iterable[Mapping[str, Any]]
) -> dict[str, str]:
    """Videos gone as of the generations before `crawl_id`, each with the crawl that found it gone.

    A re-check that finds a video unavailable appends its row with `unavailable_since`; a generation whose
    re-check saw it there again recorded it `returned` (`crawl_changes`, which video_catalog reads too).
    The newest of these before `crawl_id` says whether the video is gone now.
    """
    events = [(r["unavailable_since"], 1, r["video_id"]) for r in videos if r.get("unavailable_since")]
    events += [(r["crawl_id"], 0, r["video_id"]) for r in returned if r.get("change", RETURNED) == RETURNED]
    gone: dict[str, str] = {}
    for crawl, is_gone, vid in sorted(e for e in events if e[0] < crawl_id):
        if is_gone:
            gone.setdefault(vid, crawl)  # the first crawl of this absence
        else:
            gone.pop(vid, None)
    return gone


def caption_changes(
    crawl_id: str, videos: Iterable[Mapping[str, Any]], captions_seen: Iterable[Mapping[str, Any]]
) -> list[tuple[str, str, str]]:
    """(video_id, before, after) for each video whose caption state this generation's re-check saw change.

    `captions_seen`: {crawl_id, video_id, captions} per re-check probe, any generation. "Before" is the
    state last known before `crawl_id`, so a change is reported once, by the generation that saw it.
    """
    known: dict[str, str] = {}
    for r in sorted(videos, key=lambda r: r["crawl_id"], reverse=True):  # the first probe's row wins
        if r.get("status") == "ok" and not r.get("unavailable_since"):
            known[r["video_id"]] = recorded_caption_state(r.get("caption_kind"), r.get("drop_reason"))
    now: dict[str, str] = {}
    for seen in sorted(captions_seen, key=lambda s: s["crawl_id"]):
        if seen["crawl_id"] < crawl_id:
            known[seen["video_id"]] = seen["captions"]
        elif seen["crawl_id"] == crawl_id:
            now[seen["video_id"]] = seen["captions"]
    return [(v, known[v], now[v]) for v in sorted(now) if v in known and known[v] != now[v]]


def crawl_changes(
    crawl_id: str,
    previous_crawl_id: str | None,
    videos: Iterable[Mapping[str, Any]],
    previous_hits: Iterable[Mapping[str, Any]],
    hits: Iterable[Mapping[str, Any]],
    captions_seen: Iterable[Mapping[str, Any]] = (),
    returned: Iterable[Mapping[str, Any]] = (),
) -> list[dict[str, Any]]:
    """The change rows of `crawl_id`, sorted by change then video id.

    `videos`: every `videos` row (all generations); `previous_hits`/`hits`: `search_results` rows of the
    previous and this generation; `captions_seen`: what re-checks saw (see `caption_changes`); `returned`:
    the `returned` rows earlier generations recorded (see `gone_before`).
    """
    rows, seen = list(videos), list(captions_seen)
    seen_before = {r["video_id"] for r in rows if r["crawl_id"] < crawl_id and not r.get("unavailable_since")}
    base = {"crawl_id": crawl_id, "previous_crawl_id": previous_crawl_id, "keep": None,
            "views_before": None, "views_after": None, "captions_before": None, "captions_after": None}  # fmt: skip
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
    gone = gone_before(crawl_id, rows, returned)
    for vid in sorted({s["video_id"] for s in seen if s["crawl_id"] == crawl_id} & gone.keys()):
        out.append({**base, "video_id": vid, "change": RETURNED, "task_id": tasks.get(vid)})
    for vid, was, now in caption_changes(crawl_id, rows, seen):
        out.append({**base, "video_id": vid, "change": CAPTIONS, "task_id": tasks.get(vid),
                    "captions_before": was, "captions_after": now})  # fmt: skip
    order = {ADDED: 0, VANISHED: 1, RETURNED: 2, VIEWS: 3, CAPTIONS: 4}
    return sorted(out, key=lambda r: (order[r["change"]], r["video_id"]))
