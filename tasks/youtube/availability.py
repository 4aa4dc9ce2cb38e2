"""Re-crawl check: is each earlier kept video still there? One probe per video, politely."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from prefect import get_run_logger, task

from storage.layout import DataRoot
from storage.schemas import get_schema
from tasks.common import code_version, config_hash, shard_hash
from tasks.shard_runner import ShardOutput, count_errors, run_shard
from tasks.youtube.client import VideoError, YoutubeClient
from tasks.youtube.config import POLITENESS_FIELDS, SearchVideosConfig
from tasks.youtube.errors import ErrorKind

# Availability shards are numbered per (re-crawl, videos shard) so re-crawls only ever append.
SHARDS_PER_CRAWL = 100_000


def availability_shard(crawl_number: int, videos_shard: int) -> int:
    return crawl_number * SHARDS_PER_CRAWL + videos_shard


def check_one(client: YoutubeClient, video_id: str, crawl_id: str) -> dict[str, Any]:
    """A row saying whether the video still plays; transient failures are errors, retried next run."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    row: dict[str, Any] = {"video_id": video_id, "crawl_id": crawl_id, "checked_at": now, "error": None}
    try:
        client.probe(client.video_url(video_id))
    except VideoError as exc:
        if exc.kind is ErrorKind.UNAVAILABLE:
            return {**row, "available": False, "status": "ok", "error": str(exc)}
        return {**row, "available": None, "status": "error", "error": str(exc)}
    return {**row, "available": True, "status": "ok"}


@task(name="availability-shard", retries=1, retry_delay_seconds=10)
def check_availability_shard(
    root_url: str, shard: int, video_ids: Sequence[str], crawl_id: str, cfg: SearchVideosConfig
) -> dict[str, Any]:
    """Probe every listed video once and write one `availability` shard."""
    root = DataRoot.from_any(root_url)
    digest = shard_hash(
        config_hash(cfg, exclude=POLITENESS_FIELDS | {"crawl_id"}), crawl_id, ",".join(video_ids)
    )

    def compute() -> ShardOutput:
        client = YoutubeClient(cfg.client_settings())
        rows = [check_one(client, vid, crawl_id) for vid in video_ids]
        schema = get_schema("availability").schema
        table = pa.Table.from_pylist(rows, schema=schema)
        gone = sum(1 for r in rows if r["available"] is False)
        return ShardOutput(
            table,
            rows_in=len(video_ids),
            drops={"unavailable": gone} if gone else {},
            errors=count_errors(table),
        )

    manifest = run_shard(root, "availability", shard, digest, code_version(), compute)
    get_run_logger().info("availability shard %d: %d videos checked", shard, len(video_ids))
    return manifest
