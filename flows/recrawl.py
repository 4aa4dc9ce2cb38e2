"""Scheduled re-crawl: re-search kept tasks, process only videos not seen before, mark vanished ones,
re-check some known videos' captions, and record what the generation changed (`crawl_changes`)."""

from __future__ import annotations

import re
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.pipeline import run_stages, summary_markdown
from flows.pipeline_config import RECRAWL_DEFAULT_STAGES, PipelineConfig, Stage, Stages
from flows.stage_inputs import require_upstream
from storage.catalog import refresh
from storage.layout import DataRoot, check_data_root
from storage.shards import read_dataset
from tasks.search.crawl_record import (
    note_recrawl_started,
    record_crawl_changes,
    record_missing_generations,
    recrawl_finished,
    started_recrawls,
)

CRAWL_ID = re.compile(r"^crawl-(\d{4,})$")


def crawl_ids(root: DataRoot) -> list[str]:
    """Every crawl id recorded in `search_results`, oldest first."""
    table = read_dataset(root, "search_results").to_table(columns=["crawl_id"])
    return sorted(set(table.column("crawl_id").to_pylist()))


def next_crawl_id(root: DataRoot) -> str:
    """The newest crawl if a re-crawl started it and did not finish, else crawl-0000 for the first crawl,
    then one more than the highest seen.

    A re-crawl stopped half-way (a bot check, a killed worker, a failed features stage) and run again, by
    hand or as a retried deployment run, must finish its own generation: under a new id it searched every
    task again, re-checked another batch of known videos and recorded a generation that had added nothing.
    """
    started = started_recrawls(root)
    numbered = {int(m.group(1)): c for c in set(crawl_ids(root)) | started if (m := CRAWL_ID.match(c))}
    if not numbered:
        return "crawl-0000"
    newest = numbered[max(numbered)]
    if newest in started and not recrawl_finished(root, newest):
        return newest
    return f"crawl-{max(numbered) + 1:04d}"


# What a re-crawl does unless told: find new videos, then their captions, features and audio (training is
# its own). Each stage skips the shards it finished before, so only the new videos' shards are worked on.
DEFAULT_STAGES: list[Stage] = list(RECRAWL_DEFAULT_STAGES)


@flow(name="recrawl", log_prints=False)
def recrawl(
    cfg: PipelineConfig = PipelineConfig(),
    data_root: str | None = None,
    crawl_id: str | None = None,
    recheck_missing: bool = True,
    stages: Stages | None = None,
    recheck_captions: int | None = None,
) -> dict[str, Any]:
    """Search again under a new crawl id; new videos land in new shards, old shard files are never rewritten."""
    cfg = cfg or PipelineConfig()
    root = DataRoot.from_any(data_root)
    check_data_root(root)  # a file, read-only or full root fails here, before any network work
    # A re-crawl searches the kept tasks: on a root with none (a scheduled run on a mistyped root) it
    # searched nothing, recorded an empty generation and Completed, triggering features and training.
    require_upstream(root, "search")
    crawl = crawl_id or next_crawl_id(root)
    match = CRAWL_ID.match(crawl)
    if not match:
        raise ValueError(f"crawl id {crawl!r} must look like crawl-0001")
    log = get_run_logger()
    resumed = crawl in started_recrawls(root) and not recrawl_finished(root, crawl)
    log.info("recrawl %s on %s%s", crawl, root.url, " (resuming: it did not finish)" if resumed else "")
    note_recrawl_started(root, crawl)
    cfg = cfg.with_crawl(crawl)
    chosen: list[Stage] = list(stages or DEFAULT_STAGES)
    summaries: dict[str, Any] = {"crawl_id": crawl}
    # Kept videos that the new search no longer finds are probed again; those gone get a row with
    # `unavailable_since` in a new `videos` shard (video_catalog shows them dropped as unavailable).
    # Up to `recheck_captions` more known videos (default: the search config's, 50), the longest
    # unchecked first, are probed again and their caption state compared with their `videos` row.
    update: dict[str, Any] = {"recheck_missing": recheck_missing}
    if recheck_captions is not None:
        if recheck_captions < 0:
            raise ValueError(f"recheck_captions {recheck_captions} must be >= 0")
        update["recheck_captions"] = recheck_captions
    cfg = cfg.model_copy(update={"search": cfg.search.model_copy(update=update)})
    summaries.update(run_stages(cfg, root.url, chosen))
    # Earlier generations first: one recorded with an older schema version, or whose re-checks this run
    # retried (what they saw is that generation's news), so that this one's record reads them as known.
    earlier = [c for c in crawl_ids(root) if c < crawl]
    summaries["re_recorded"] = record_missing_generations(root, earlier)
    # What this generation added, found gone and saw change: the `crawl_changes` dataset, `crawls` view.
    # Written last: it says the re-crawl finished.
    summaries["changes"] = record_crawl_changes(root, crawl)
    refresh(root)
    log.info("recrawl %s: changes %s", crawl, summaries["changes"] or "none")
    create_markdown_artifact(summary_markdown(f"recrawl {crawl}", summaries), key="recrawl-summary")
    return summaries
