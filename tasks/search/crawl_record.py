"""Write a re-crawl generation's `crawl_changes` shard (shard number = crawl number), from the data root;
note which re-crawls started, so that one interrupted is resumed rather than followed by a new generation."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from storage.atomic import atomic_write_bytes, is_temp_name
from storage.layout import DataRoot
from storage.schemas import get_schema
from storage.shards import read_dataset, read_marker, write_shard
from tasks.common import code_version, config_hash
from tasks.search.crawl_diff import RETURNED, crawl_changes
from tasks.search.plans import PLANS_DIR, RECHECK, video_plans

DATASET = "crawl_changes"
_NUMBER = re.compile(r"(\d+)$")
RECRAWLS = "recrawls"  # _plans/recrawls/<crawl id>.json: a re-crawl of that crawl started
_HIT_COLUMNS = ["video_id", "view_count"]
_SEARCH_COLUMNS = ["crawl_id", "rank", "video_id", "status"]
_VIDEO_COLUMNS = ["video_id", "task_id", "keep", "unavailable_since", "crawl_id", "status", "caption_kind",
                  "drop_reason"]  # fmt: skip


def _hits(root: DataRoot, crawl_id: str | None) -> list[dict[str, object]]:
    if crawl_id is None:
        return []
    dataset = read_dataset(root, "search_results")
    table = dataset.to_table(columns=_HIT_COLUMNS, filter=pc.field("crawl_id") == crawl_id)
    return table.to_pylist()


def captions_seen(root: DataRoot, up_to: str) -> list[dict[str, str]]:
    """What the re-check probes of every generation up to `up_to` saw: their shard markers' `captions_seen`."""
    seen = []
    for shard, plan in sorted(video_plans(root).items()):
        if plan.get("source") != RECHECK or plan["crawl_id"] > up_to:
            continue
        marker = read_marker(root, "videos", shard)
        for vid, state in ((marker.extra.get("captions_seen") or {}) if marker else {}).items():
            seen.append({"crawl_id": plan["crawl_id"], "video_id": vid, "captions": state})
    return seen


def returned_rows(root: DataRoot) -> list[dict[str, str]]:
    """Every `returned` change recorded (crawl_id, video_id): gone videos a generation saw back."""
    table = read_dataset(root, DATASET).to_table(
        columns=["crawl_id", "video_id"], filter=pc.field("change") == RETURNED
    )
    return table.to_pylist()


def searches_answered(root: DataRoot) -> dict[str, bool]:
    """Each crawl in `search_results`, and whether any of its searches got an answer (a hit, or none found).

    A crawl whose every search failed (an outage, every query refused) has, per task, one row with neither
    rank nor video id and a status other than ok, as the search stage's `every_search_failed` counts them.
    It stopped before planning anything and is no generation: one abandoned (the user went on with
    `--crawl-id`) was taken as the next crawl's previous generation, whose changes were then compared with
    no hits at all. A search that answered with no results is an ok row."""
    table = read_dataset(root, "search_results").to_table(columns=_SEARCH_COLUMNS)
    answered = pc.or_(
        pc.or_(pc.is_valid(table.column("rank")), pc.is_valid(table.column("video_id"))),
        pc.fill_null(pc.equal(table.column("status"), "ok"), False),
    )
    per_crawl = pa.table({"crawl_id": table.column("crawl_id"), "answered": answered})
    grouped = per_crawl.group_by("crawl_id").aggregate([("answered", "any")]).to_pylist()
    return {row["crawl_id"]: bool(row["answered_any"]) for row in grouped}


def failed_crawls(root: DataRoot) -> set[str]:
    """The crawls whose every search failed (see `searches_answered`)."""
    return {crawl for crawl, answered in searches_answered(root).items() if not answered}


def previous_generation(root: DataRoot, crawl_id: str) -> str | None:
    """The generation `crawl_id` is compared with: the newest earlier crawl whose searches got an answer
    (one whose every search failed is skipped); None for the first."""
    earlier = sorted(c for c, answered in searches_answered(root).items() if answered and c < crawl_id)
    return earlier[-1] if earlier else None


def record_crawl_changes(root: DataRoot, crawl_id: str) -> dict[str, int]:
    """Compare `crawl_id` with the generation before it and write the change rows; counts per change.

    Rewritten whole on every run of the same crawl (a resumed crawl adds videos), never another crawl's.
    """
    match = _NUMBER.search(crawl_id)
    if match is None:
        raise ValueError(f"crawl id {crawl_id!r} has no number")
    started = time.time()
    previous = previous_generation(root, crawl_id)
    videos = read_dataset(root, "videos").to_table(columns=_VIDEO_COLUMNS).to_pylist()
    rows = crawl_changes(
        crawl_id,
        previous,
        videos,
        _hits(root, previous),
        _hits(root, crawl_id),
        captions_seen(root, crawl_id),
        returned_rows(root),
    )
    table = pa.Table.from_pylist(rows, schema=get_schema(DATASET).schema)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["change"]] = counts.get(row["change"], 0) + 1
    write_shard(
        root,
        DATASET,
        int(match.group(1)),
        table,
        config_hash=config_hash({"crawl_id": crawl_id, "previous_crawl_id": previous}),
        code_version=code_version(),
        rows_in=len(videos),
        started_at=started,
        extra={"previous_crawl_id": previous, "changes": counts},
    )
    return counts


def probed_since(root: DataRoot, plans: Mapping[int, Mapping[str, Any]], crawl_id: str, since: float) -> bool:
    """Whether a `videos` shard of one of `crawl_id`'s plans was written after `since`: a later run retried
    its errors (a timed-out re-check or probe), after the generation's change record was written."""
    for shard, plan in plans.items():
        if plan["crawl_id"] == crawl_id:
            marker = read_marker(root, "videos", shard)
            if marker is not None and marker.finished_at > since:
                return True
    return False


def record_missing_generations(root: DataRoot, crawl_ids: list[str]) -> list[str]:
    """Record every re-crawl generation (all but the first) that has no `crawl_changes` shard of the
    current schema version, e.g. one recorded before caption changes were, or whose videos shards a later
    run rewrote since (its re-checks' errors retried: what they saw, a caption change, a video gone, was
    never reported, as the later generation takes it as known before), or that was compared with a crawl
    whose every search failed (recorded before such a crawl was skipped). The rows derive from the data root
    alone, so recording them again is safe. The generations recorded, oldest first.

    A crawl whose every search failed (`failed_crawls`) is left unrecorded: a shard would say it finished."""
    done = []
    plans = video_plans(root)
    failed = failed_crawls(root)
    for crawl in sorted(crawl_ids)[1:]:
        match = _NUMBER.search(crawl)
        if match is None or crawl in failed:
            continue
        marker = read_marker(root, DATASET, int(match.group(1)))
        if (
            marker is None
            or probed_since(root, plans, crawl, marker.finished_at)
            or marker.extra.get("previous_crawl_id") in failed
        ):
            record_crawl_changes(root, crawl)
            done.append(crawl)
    return done


def note_recrawl_started(root: DataRoot, crawl_id: str) -> None:
    """Record that a re-crawl of `crawl_id` started (kept as first written when it is resumed). Its
    `crawl_changes` shard, written last, says it finished: in between, the crawl is unfinished."""
    path = root.path(PLANS_DIR, RECRAWLS, f"{crawl_id}.json")
    if not root.exists(path):
        atomic_write_bytes(root, path, json.dumps({"crawl_id": crawl_id, "started_at": time.time()}).encode())


def started_recrawls(root: DataRoot) -> set[str]:
    """Every crawl id a re-crawl was started for."""
    folder = root.path(PLANS_DIR, RECRAWLS)
    if not root.exists(folder):
        return set()
    names = (p.rsplit("/", 1)[-1] for p in root.fs.glob(f"{folder}/*.json") if not is_temp_name(p))
    return {name.removesuffix(".json") for name in names}


def recrawl_finished(root: DataRoot, crawl_id: str) -> bool:
    """Whether the re-crawl of `crawl_id` got to its end: it wrote the generation's `crawl_changes` shard."""
    match = _NUMBER.search(crawl_id)
    return match is not None and read_marker(root, DATASET, int(match.group(1))) is not None
