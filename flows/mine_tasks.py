"""Stage 1 flow: walk wikiHow's categories, mine articles in shards, keep visual tasks -> `tasks`."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from flows.runtime import finish_stage, run_shard_tasks, summarize
from storage.layout import DataRoot, check_data_root
from tasks.tasks.config import MineTasksConfig
from tasks.tasks.mine import (
    discover_articles,
    found_from_dicts,
    mine_own_hash,
    mine_shard,
    remove_stale_shards,
    require_articles,
)
from tasks.wikihow.crawl import plan_shards, shard_members_hash

STAGE = "mine_tasks"


@flow(name="mine-tasks", log_prints=True)
def mine_tasks(cfg: MineTasksConfig = MineTasksConfig(), data_root: str | None = None) -> dict[str, Any]:
    """Crawl `cfg.base_url`, write one `tasks` shard per ~`cfg.shard_size` articles, return a summary.

    Shards are the sorted article titles cut into chunks, so the same crawl always gives the same
    shards; a shard is redone only when its members or the config change, or it had transient errors.
    """
    log = get_run_logger()
    root = DataRoot.from_any(data_root)
    check_data_root(root)  # a file, read-only or full root fails here, before any network work
    found = found_from_dicts(discover_articles(root.url, cfg))
    require_articles(found, cfg)  # an empty walk (a mistyped category) must not wipe the mined tasks
    shards = plan_shards(found, cfg.shard_size, cfg.max_articles)
    log.info("%s: %d articles in %d shards from %s", STAGE, sum(map(len, shards)), len(shards), cfg.base_url)
    kwargs = [
        {
            "data_root": root.url,
            "shard": index,
            "items": [item.to_dict() for item in shard],
            "cfg": cfg,
            "own_hash": mine_own_hash(cfg, shard_members_hash(shard)),
        }
        for index, shard in enumerate(shards)
    ]
    manifests = run_shard_tasks(STAGE, mine_shard, kwargs)
    stale = remove_stale_shards(root, len(shards))
    duplicates = sum(1 for shard in shards for item in shard if item.duplicate_of)
    summary = summarize(
        STAGE,
        manifests,
        {"crawl_id": cfg.crawl_id, "articles": sum(map(len, shards)), "duplicates": duplicates,
         "kept": sum(m["rows_out"] - sum(m["drops"].values()) - m["errors"] for m in manifests),
         "stale_shards_removed": stale},
    )  # fmt: skip
    return finish_stage(STAGE, root, summary)
