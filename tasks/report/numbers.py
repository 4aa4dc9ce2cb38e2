"""Every number the report shows, read with the DuckDB catalog (binned in SQL: a 136M-clip root stays cheap)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from storage.catalog import feature_coverage, query
from storage.layout import DataRoot
from storage.shards import list_markers, read_shard
from tasks.howto100m.rows import NO_CAPTIONS
from tasks.search.crawl_record import captions_seen

# HowTo100M as published (Miech et al., ICCV 2019, Table 1 and section 3): the figures we compare with.
PAPER = {
    "tasks": 23_611,
    "videos": 1_221_000,
    "clips": 136_000_000,
    "hours": 134_472,
    "clips_per_video": 110,
    "clip_duration_s": 4.0,
    "words_per_clip": 4.0,
}
DURATION_BIN_S = 0.5
DURATION_MAX_S = 30.0
WORDS_MAX = 40
CLIPS_BIN = 10
CLIPS_MAX = 600


@dataclass
class Stage:
    """One step of the funnel: how many went in, how many it kept, and why it dropped the rest."""

    name: str
    unit: str
    total: int
    kept: int
    drops: dict[str, int] = field(default_factory=dict)


@dataclass
class ReportNumbers:
    root: str
    funnel: list[Stage]
    clips: int
    videos_with_clips: int
    hours: float  # sum of clip spans, hours
    # Clips per video, clip duration (s), words per clip; None where there is no clip to average over (a
    # card that said "0.0 / 0.0" read as clips of zero seconds).
    means: dict[str, float | None]
    medians: dict[str, float | None]
    clips_per_video: list[tuple[int, int]]  # (bin start, videos)
    durations: list[tuple[float, int]]  # (bin start in s, clips)
    words: list[tuple[int, int]]  # (words, clips)
    hours_by_category: list[tuple[str, float]]
    caption_kinds: list[tuple[str, str, int]]  # (kind, language, videos)
    caption_sources: dict[str, int]  # videos with captions, by where their captions came from
    crawls: list[dict[str, Any]]
    features: dict[str, Any] = field(default_factory=dict)  # storage.catalog.feature_coverage
    paper: dict[str, float] = field(default_factory=lambda: dict(PAPER))


def _rows(root: DataRoot, sql: str) -> list[tuple[Any, ...]]:
    return query(sql, root).rows


def _scalar(root: DataRoot, sql: str) -> Any:
    return _rows(root, sql)[0][0]


def _drops(root: DataRoot, sql: str) -> dict[str, int]:
    return {str(reason): int(n) for reason, n in _rows(root, sql)}


FIRST_SIGHTING = (
    "(SELECT * FROM videos WHERE unavailable_since IS NULL "
    "QUALIFY row_number() OVER (PARTITION BY video_id ORDER BY crawl_id) = 1)"
)
GONE = "(SELECT video_id FROM video_catalog WHERE unavailable_since IS NOT NULL)"
# A vanished video's caption track and clips stay in the dataset (shards are never rewritten), but the
# funnel's kept videos leave it out: they are counted as dropped with it, so no stage keeps more than the
# videos before it left.
LATEST_CAPTIONS = (
    f"(SELECT * REPLACE (keep AND video_id NOT IN {GONE} AS keep, CASE WHEN keep AND video_id IN {GONE} "
    "THEN 'video unavailable (re-crawl)' ELSE drop_reason END AS drop_reason) FROM captions "
    "QUALIFY row_number() OVER (PARTITION BY video_id ORDER BY crawl_id DESC) = 1)"
)


def _stage(root: DataRoot, name: str, unit: str, source: str) -> Stage:
    total, kept = _rows(root, f"SELECT count(*), count(*) FILTER (WHERE keep) FROM {source}")[0]
    drops = _drops(root, f"SELECT coalesce(drop_reason, 'status ' || status), count(*) FROM {source} "
                         "WHERE NOT keep GROUP BY 1 ORDER BY 2 DESC, 1")  # fmt: skip
    return Stage(name, unit, int(total), int(kept), drops)


def funnel(root: DataRoot) -> list[Stage]:
    """tasks -> search hits -> videos (probed or imported) -> caption tracks -> clips, each with its drops."""
    gone = int(_scalar(root, "SELECT count(*) FROM video_catalog WHERE unavailable_since IS NOT NULL"))
    videos = _stage(root, "videos", "unique videos", FIRST_SIGHTING)
    if gone:
        videos.drops["unavailable (re-crawl)"] = gone
        videos.kept -= gone
    clips, clips_kept = _rows(
        root, f"SELECT count(*), count(*) FILTER (WHERE video_id NOT IN {GONE}) FROM clips"
    )[0]
    clip_drops = {"video unavailable (re-crawl)": int(clips - clips_kept)} if clips > clips_kept else {}
    return [
        _stage(root, "tasks", "tasks", "tasks"),
        _stage(root, "search hits", "hits", "search_results"),
        videos,
        _stage(root, "caption tracks", "videos", LATEST_CAPTIONS),
        Stage("clips", "clips", int(clips), int(clips_kept), clip_drops),
    ]


def crawl_history(root: DataRoot) -> list[dict[str, Any]]:
    """Per crawl generation: when it ran (its first videos shard), videos first seen, videos found gone,
    and for a re-crawl the generation it was compared with, how many view counts changed, how many known
    videos it re-checked and how many of those had changed captions; `failed` for a crawl whose every
    search failed (the `crawls` view's status), which is no generation."""
    started: dict[str, float] = {}
    for marker in list_markers(root, "videos"):
        table = read_shard(root, "videos", marker.shard)
        if table is None:
            continue
        for crawl in set(table.column("crawl_id").to_pylist()):
            started[crawl] = min(started.get(crawl, marker.started_at), marker.started_at)
    # Every generation, also one that added no video and found none gone (only its search rows say it ran).
    # A video is first seen by its first sighting's crawl, as in the `crawls` view: a re-check's `error` row
    # (a probe to retry) carries the re-crawl's id too, and was counted as a video that crawl first saw.
    rows = _rows(
        root,
        "WITH ids AS (SELECT crawl_id FROM videos UNION SELECT crawl_id FROM search_results), "
        "first AS (SELECT video_id, min(crawl_id) AS crawl_id FROM videos WHERE unavailable_since IS NULL "
        "GROUP BY 1) "
        "SELECT i.crawl_id, (SELECT count(*) FROM first f WHERE f.crawl_id = i.crawl_id), "
        "(SELECT count(DISTINCT video_id) FROM videos v WHERE v.unavailable_since = i.crawl_id) "
        "FROM ids i ORDER BY 1",
    )
    # What each re-crawl recorded about itself (flows/recrawl.py): the generation compared with, views.
    # The `crawls` view knows the generation compared with even when nothing changed (no change rows).
    recorded = _rows(root, "SELECT crawl_id, previous_crawl_id, views_changed, returned, status FROM crawls")
    changes = {c: (p, int(v)) for c, p, v, _, _ in recorded}
    returned = {c: int(r) for c, _, _, r, _ in recorded}  # gone videos a re-check saw back
    # A crawl whose every search failed is no generation (no later crawl is compared with it): said so.
    failed = {c for c, _, _, _, status in recorded if status == "failed"}
    captions = dict(
        _rows(root, "SELECT crawl_id, count(*) FROM crawl_changes WHERE change = 'captions' GROUP BY 1")
    )
    checked: dict[str, int] = {}
    for seen in captions_seen(root, max((r[0] for r in rows), default="")):
        checked[seen["crawl_id"]] = checked.get(seen["crawl_id"], 0) + 1
    return [
        {"crawl_id": c, "started_at": started.get(c), "new_videos": int(n), "gone": int(g),
         "compared_with": changes.get(c, (None, 0))[0], "views_changed": changes.get(c, (None, 0))[1],
         "captions_checked": checked.get(c, 0), "captions_changed": int(captions.get(c, 0)),
         "returned": returned.get(c, 0), "failed": c in failed}
        for c, n, g in rows
    ]  # fmt: skip


def captioned_videos_per_shard(root: DataRoot) -> dict[int, int]:
    """`captions` shard -> its videos whose captions were read (status ok, whether kept or not).

    An imported video the caption file has no entry for also has an `ok` row (nothing failed), dropped as
    `no_captions`: it has no captions to come from anywhere, and counting it made the card say every csv
    video got its captions from caption.json."""
    counts: dict[int, int] = {}
    for marker in list_markers(root, "captions"):
        table = read_shard(root, "captions", marker.shard)
        if table is not None:
            statuses, reasons = table.column("status").to_pylist(), table.column("drop_reason").to_pylist()
            counts[marker.shard] = sum(
                s == "ok" and r != NO_CAPTIONS for s, r in zip(statuses, reasons, strict=True)
            )
    return counts


def _or_none(value: Any) -> float | None:
    """DuckDB's avg and median of no rows are NULL: kept as None, not read as 0."""
    return None if value is None else float(value)


def collect(root: DataRoot) -> ReportNumbers:
    """Every number the report shows, over the finished shards (each query first brings the catalog up to
    date with them, in a temporary catalog where the root is read-only)."""
    clips = int(_scalar(root, "SELECT count(*) FROM clips"))
    videos = int(_scalar(root, "SELECT count(DISTINCT video_id) FROM clips"))
    per_video = "(SELECT video_id, count(*) AS n FROM clips GROUP BY 1)"
    means = _rows(root, f"SELECT avg(n), median(n) FROM {per_video}")[0]
    spans = _rows(root, "SELECT avg(end_ms - start_ms) / 1000, median(end_ms - start_ms) / 1000, avg(n_words), median(n_words), "
                        "coalesce(sum(end_ms - start_ms), 0) / 3.6e6 FROM clips")[0]  # fmt: skip
    # Videos with captions, by where they came from: a `videos` shard says its source (the release's files
    # for an import), its `captions` shard of the same number which of its videos got captions. Counting the
    # `videos` rows themselves also counted the private, removed and caption-less videos.
    captioned = captioned_videos_per_shard(root)
    sources: dict[str, int] = {}
    for marker in list_markers(root, "videos"):
        source = str(marker.extra.get("caption_source") or "crawled (.vtt)")
        sources[source] = sources.get(source, 0) + captioned.get(marker.shard, 0)
    return ReportNumbers(
        root=root.url,
        funnel=funnel(root),
        clips=clips,
        videos_with_clips=videos,
        hours=float(spans[4] or 0.0),
        means={"clips_per_video": _or_none(means[0]), "clip_duration_s": _or_none(spans[0]), "words_per_clip": _or_none(spans[2])},
        medians={"clips_per_video": _or_none(means[1]), "clip_duration_s": _or_none(spans[1]), "words_per_clip": _or_none(spans[3])},
        clips_per_video=[(int(b), int(n)) for b, n in _rows(
            root, f"SELECT least(n, {CLIPS_MAX}) // {CLIPS_BIN} * {CLIPS_BIN} AS b, count(*) FROM {per_video} GROUP BY 1 ORDER BY 1")],
        durations=[(float(b), int(n)) for b, n in _rows(
            root, f"SELECT least(floor((end_ms - start_ms) / {DURATION_BIN_S * 1000}), {DURATION_MAX_S / DURATION_BIN_S}) * {DURATION_BIN_S} AS b, "
                  "count(*) FROM clips GROUP BY 1 ORDER BY 1")],
        words=[(int(w), int(n)) for w, n in _rows(root, f"SELECT least(n_words, {WORDS_MAX}), count(*) FROM clips GROUP BY 1 ORDER BY 1")],
        hours_by_category=[(str(c), float(h)) for c, h in _rows(
            root, "SELECT coalesce(category, '(no category)'), sum(end_ms - start_ms) / 3.6e6 FROM clips GROUP BY 1 ORDER BY 2 DESC")],
        caption_kinds=[(str(k), str(lang), int(n)) for k, lang, n in _rows(
            root, "SELECT coalesce(caption_kind, 'unknown'), coalesce(caption_lang, 'unknown'), count(*) FROM captions WHERE keep "
                  "GROUP BY 1, 2 ORDER BY 3 DESC")],
        caption_sources=sources,
        crawls=crawl_history(root),
        features=feature_coverage(root),
    )  # fmt: skip
