"""Stage 3 flow: each kept video's caption track -> `captions` (one row per video) and `clips` shards."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from flows.runtime import finish_stage, run_shard_tasks, summarize
from flows.stage_inputs import require_own_input
from storage.layout import DataRoot, check_data_root
from tasks.captions.config import FetchCaptionsConfig
from tasks.captions.stage import captions_shard
from tasks.howto100m.layout import crawled_video_shards
from tasks.youtube.access import YoutubeAccess

STAGE = "fetch_captions"


@flow(name="fetch_captions", log_prints=False)
def fetch_captions(
    cfg: FetchCaptionsConfig = FetchCaptionsConfig(),
    data_root: str | None = None,
    access: YoutubeAccess = YoutubeAccess(),
) -> dict[str, Any]:
    """`captions`/`clips` shard k from `videos` shard k; finished shards are skipped, failed videos retried."""
    root = DataRoot.from_any(data_root)
    check_data_root(root)  # a file, read-only or full root fails here, before any network work
    require_own_input(root, "captions")
    # Imported shards came with their captions, clips and features: never redone from the web.
    shards = crawled_video_shards(root)
    get_run_logger().info("%s: %d videos shards", STAGE, len(shards))
    manifests = run_shard_tasks(
        STAGE,
        captions_shard,
        [{"root_url": root.url, "shard": k, "cfg": cfg, "access": access} for k in shards],
    )
    summary = summarize(STAGE, manifests, {"clips": sum(int(m.get("clips") or 0) for m in manifests)})
    return finish_stage(STAGE, root, summary)
