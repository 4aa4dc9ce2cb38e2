"""The search/probe stage's typed config: what to search and what to keep (how we reach the site is
tasks/youtube/access.py, never part of this config or its hash)."""

from __future__ import annotations

from pydantic import Field

from tasks.config_types import CrawlId
from tasks.stage_config import RunOnly, StageConfig
from tasks.youtube.decision import Limits


class SearchVideosConfig(StageConfig):
    """Search "how to <task>" for every kept task, probe each new video once, keep or drop it."""

    crawl_id: CrawlId = "crawl-0000"
    search_prefix: str = Field(
        default="ytsearch", pattern=r"^[a-z]+$", description="ytsearch, or demosearch for the demo"
    )
    max_results: int = Field(default=200, ge=1, le=1000, description="search hits per task (HowTo100M: 200)")
    query_template: str = "how to {title}"
    # Shard sizes only move tasks and videos between shards: a shard's own listing is hashed instead.
    tasks_per_shard: RunOnly[int] = Field(default=50, ge=1)
    videos_per_shard: RunOnly[int] = Field(default=250, ge=1, le=5000)
    max_duration_s: float = Field(default=2000.0, gt=0)
    min_views: int = Field(default=100, ge=0)
    recheck_missing: RunOnly[bool] = Field(
        default=False,
        description="re-crawls: probe kept videos of earlier crawls that search no longer finds, "
        "and record those now gone with unavailable_since",
    )
    recheck_captions: RunOnly[int] = Field(
        default=50,
        ge=0,
        le=100_000,
        description="re-crawls: probe up to this many kept videos of earlier crawls again (the longest "
        "unchecked first) and record caption changes; 0 turns it off",
    )

    def limits(self) -> Limits:
        return Limits(max_duration_s=self.max_duration_s, min_views=self.min_views)

    def query(self, title: str) -> str:
        """The search query for a task title; a title that already starts with "how to" is used as is."""
        clean = " ".join(title.split())
        if clean.lower().startswith("how to "):
            return clean
        return self.query_template.format(title=clean)
