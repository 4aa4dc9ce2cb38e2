"""Scheduled re-crawl: re-search kept tasks, process only videos not seen before, mark vanished ones."""

from __future__ import annotations

import re
from typing import Any

import pyarrow.compute as pc
from prefect import flow, get_run_logger

from flows.pipeline import run_stages, summary_markdown
from flows.pipeline_config import PipelineConfig, Stage
from flows.runtime import finish_stage, run_shard_tasks, summarize, with_runner
from storage.layout import DataRoot
from storage.shards import list_markers, read_dataset, read_shard
from tasks.youtube.availability import availability_shard, check_availability_shard

CRAWL_ID = re.compile(r"^crawl-(\d{4,})$")


def crawl_ids(root: DataRoot) -> list[str]:
    """Every crawl id recorded in `search_results`, oldest first."""
    table = read_dataset(root, "search_results").to_table(columns=["crawl_id"])
    return sorted(set(table.column("crawl_id").to_pylist()))


def next_crawl_id(root: DataRoot) -> str:
    """crawl-0000 for the first crawl, then one more than the highest seen."""
    numbers = [int(m.group(1)) for c in crawl_ids(root) if (m := CRAWL_ID.match(c))]
    return f"crawl-{(max(numbers) + 1 if numbers else 0):04d}"


def kept_videos_by_shard(root: DataRoot, before_crawl: str) -> dict[int, list[str]]:
    """Kept videos of earlier crawls, by `videos` shard (a shard per crawl never mixes crawls)."""
    out: dict[int, list[str]] = {}
    for marker in list_markers(root, "videos"):
        table = read_shard(root, "videos", marker.shard)
        if table is None or table.num_rows == 0:
            continue
        table = table.filter(
            pc.and_(pc.equal(table.column("keep"), True), pc.less(table.column("crawl_id"), before_crawl))
        )
        if table.num_rows:
            out[marker.shard] = sorted(table.column("video_id").to_pylist())
    return out


@flow(name="recrawl", log_prints=False)
def recrawl(
    cfg: PipelineConfig | None = None,
    data_root: str | None = None,
    crawl_id: str | None = None,
    check_availability: bool = True,
    stages: list[Stage] | None = None,
) -> dict[str, Any]:
    """Search again under a new crawl id; new videos land in new shards, old shard files are never rewritten."""
    cfg = cfg or PipelineConfig()
    root = DataRoot.from_any(data_root)
    crawl = crawl_id or next_crawl_id(root)
    match = CRAWL_ID.match(crawl)
    if not match:
        raise ValueError(f"crawl id {crawl!r} must look like crawl-0001")
    log = get_run_logger()
    log.info("recrawl %s on %s", crawl, root.url)
    cfg = cfg.with_crawl(crawl)
    chosen: list[Stage] = list(stages or ["search", "captions", "features"])
    summaries: dict[str, Any] = {"crawl_id": crawl}
    summaries.update(run_stages(cfg, root.url, [s for s in chosen if s == "search"]))
    if check_availability:
        summaries["availability"] = with_runner(check_availability_flow, cfg.runner)(cfg, root.url, crawl)
    summaries.update(run_stages(cfg, root.url, [s for s in chosen if s != "search"]))
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(summary_markdown(f"recrawl {crawl}", summaries), key="recrawl-summary")
    return summaries


@flow(name="check_availability", log_prints=False)
def check_availability_flow(cfg: PipelineConfig, data_root: str, crawl_id: str) -> dict[str, Any]:
    """Probe every earlier kept video once; vanished ones get `unavailable_since` in `video_catalog`."""
    root = DataRoot.from_any(data_root)
    number = int(CRAWL_ID.match(crawl_id).group(1))  # type: ignore[union-attr]
    by_shard = kept_videos_by_shard(root, crawl_id)
    kwargs = [
        {
            "root_url": root.url,
            "shard": availability_shard(number, shard),
            "video_ids": ids,
            "crawl_id": crawl_id,
            "cfg": cfg.search,
        }
        for shard, ids in sorted(by_shard.items())
    ]
    manifests = run_shard_tasks("check_availability", check_availability_shard, kwargs)
    return finish_stage(
        "check_availability", root, summarize("check_availability", manifests, {"crawl_id": crawl_id})
    )
