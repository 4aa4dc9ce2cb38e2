"""Stage 2 flow: search each kept task, de-duplicate the hits, probe each new video once, keep or drop it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from flows.runtime import finish_stage, run_shard_tasks, summarize
from flows.stage_inputs import require_own_input
from storage.layout import DataRoot, check_data_root
from storage.shards import is_done, list_markers, read_marker
from tasks.search.assign import new_candidates
from tasks.search.config import SearchVideosConfig
from tasks.search.inputs import chunk, kept_tasks
from tasks.search.planning_claim import planning_claim
from tasks.search.plans import (
    append_video_plans,
    crawl_search_base,
    next_video_shard,
    plan_new_videos,
    plan_rechecks,
    remove_leftovers,
    save_search_plan,
    seen_video_ids,
    video_plans,
)
from tasks.search.probe import probe_own_hash, probe_shard
from tasks.search.search import check_searches, search_shard
from tasks.shard_runner import job_fingerprint
from tasks.youtube.access import YoutubeAccess
from tasks.youtube.ids import parse_import_text

STAGE = "search_videos"


def _probe_plans(root: DataRoot, cfg: SearchVideosConfig, access: YoutubeAccess) -> list[dict[str, Any]]:
    """Phase C: every plan of this crawl (finished ones come back cached) and any older one with errors."""
    kwargs = []
    for shard, plan in sorted(video_plans(root).items()):
        marker = read_marker(root, "videos", shard)
        pending = not is_done(root, "videos", shard, job_fingerprint(probe_own_hash(cfg, plan), {})) or (
            marker and marker.errors
        )
        if plan["crawl_id"] == cfg.crawl_id or pending:
            kwargs.append({"root_url": root.url, "shard": shard, "cfg": cfg, "access": access})
    return run_shard_tasks(f"{STAGE}: probe", probe_shard, kwargs)


def _begin(
    cfg: SearchVideosConfig | None, access: YoutubeAccess | None, data_root: str | None
) -> tuple[SearchVideosConfig, YoutubeAccess, DataRoot]:
    """Defaults for what was not given; the data root checked and cleared of a killed run's leftovers."""
    root = DataRoot.from_any(data_root)
    check_data_root(root)  # a file, read-only or full root fails here, before any network work
    remove_leftovers(root)
    return cfg or SearchVideosConfig(), access or YoutubeAccess(), root


@flow(name="search_videos", log_prints=False)
def search_videos(
    cfg: SearchVideosConfig = SearchVideosConfig(),
    data_root: str | None = None,
    access: YoutubeAccess = YoutubeAccess(),
) -> dict[str, Any]:
    """Search (phase A), de-duplicate and plan new videos (B), probe and decide (C); resumable per shard."""
    cfg, access, root = _begin(cfg, access, data_root)
    require_own_input(root, "search")
    log = get_run_logger()
    tasks = kept_tasks(root)
    chunks = chunk(tasks, cfg.tasks_per_shard)
    base = crawl_search_base(root, cfg.crawl_id, (m.shard for m in list_markers(root, "search_results")))
    save_search_plan(root, cfg.crawl_id, base, len(chunks))
    log.info(
        "%s: %d kept tasks in %d search shards from shard %d (%s)",
        STAGE,
        len(tasks),
        len(chunks),
        base,
        cfg.crawl_id,
    )
    searched = run_shard_tasks(
        f"{STAGE}: search",
        search_shard,
        [
            {"root_url": root.url, "shard": base + i, "tasks": c, "cfg": cfg, "access": access}
            for i, c in enumerate(chunks)
        ],
    )
    searched_shards = range(base, base + len(chunks))
    # An outage or a site refusing every query (no search answered) fails the stage here: a re-crawl that
    # went on recorded an empty generation, Completed and triggered features and training. The rerun
    # searches again (refusals of every query are not kept: see check_searches).
    check_searches(root, cfg.crawl_id, searched_shards, searched)
    with planning_claim(root, cfg.crawl_id):
        new_plans = plan_new_videos(root, cfg.crawl_id, searched_shards, cfg.videos_per_shard)
        rechecks = []
        if cfg.recheck_missing or cfg.recheck_captions:
            rechecks = plan_rechecks(
                root,
                cfg.crawl_id,
                searched_shards,
                cfg.videos_per_shard,
                cfg.recheck_missing,
                cfg.recheck_captions,
            )
    if cfg.recheck_missing or cfg.recheck_captions:
        log.info(
            "%s: %d known videos to re-check (not found again, or due for a caption check)",
            STAGE,
            sum(len(p["videos"]) for p in rechecks),
        )
    log.info(
        "%s: %d new videos in %d new shards", STAGE, sum(len(p["videos"]) for p in new_plans), len(new_plans)
    )
    probed = _probe_plans(root, cfg, access)
    summary = summarize(
        STAGE,
        probed,
        {
            "crawl_id": cfg.crawl_id,
            "tasks": len(tasks),
            "search_shards": len(searched),
            "search_hits": sum(int(m["hits"]) for m in searched),
            "search_errors": sum(int(m["errors"]) for m in searched),
            # Refused for good (a 404: status failed, no hit), kept and not asked again: neither a hit nor an
            # error, so without this count a crawl that partly succeeded said nothing of them.
            "search_refused": sum(int(m.get("refused", 0)) for m in searched),
            "new_videos": sum(len(p["videos"]) for p in new_plans),
        },
    )
    return finish_stage(STAGE, root, summary)


@flow(name="import_videos", log_prints=False)
def import_videos(
    path: str,
    cfg: SearchVideosConfig | None = None,
    data_root: str | None = None,
    access: YoutubeAccess | None = None,
) -> dict[str, Any]:
    """Probe the videos listed in a file (ids, URLs or HowTo100M_v1.csv) without searching."""
    cfg, access, root = _begin(cfg, access, data_root)
    log = get_run_logger()
    parsed = parse_import_text(Path(path).read_text(encoding="utf-8", errors="replace"))
    bad = [p for p in parsed if p.error]
    for item in bad[:20]:
        log.warning("%s: %s", path, item.error)
    best: dict[str, dict[str, Any]] = {}
    for item in parsed:
        if item.video_id and item.video_id not in best:
            best[item.video_id] = {
                "video_id": item.video_id,
                "task_id": item.task_id,
                "rank": item.rank,
                "url": None,
                "title": None,
            }
    with planning_claim(root, cfg.crawl_id):
        fresh = new_candidates(best, seen_video_ids(root))
        plans = append_video_plans(
            root, fresh, cfg.crawl_id, "import", cfg.videos_per_shard, next_video_shard(root)
        )
    log.info(
        "%s: %d lines, %d bad, %d new videos in %d shards",
        path,
        len(parsed),
        len(bad),
        len(fresh),
        len(plans),
    )
    probed = _probe_plans(root, cfg, access)
    summary = summarize(
        "import_videos", probed, {"lines": len(parsed), "bad_lines": len(bad), "new_videos": len(fresh)}
    )
    return finish_stage("import_videos", root, summary)
