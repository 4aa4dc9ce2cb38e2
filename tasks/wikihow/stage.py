"""Prefect tasks of stage 1: discover articles (cached per crawl), mine one shard, write imported shards."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from storage.layout import DataRoot
from storage.schemas import get_schema
from storage.shards import list_markers, read_marker, read_shard
from tasks.common import code_version, shard_hash
from tasks.shard_runner import ShardOutput, count_errors, drops_by_reason, run_shard
from tasks.wikihow.config import MineTasksConfig
from tasks.wikihow.crawl import FoundArticle, PlannedArticle, walk_categories
from tasks.wikihow.import_stage import IMPORT_SHARD_BASE
from tasks.wikihow.rows import mined_row, rows_to_table

DATASET = "tasks"


def _walk_cache_path(root: DataRoot, cfg: MineTasksConfig) -> str:
    version = get_schema(DATASET).version
    return f"{root.dataset_dir(DATASET, version)}/_crawl/{cfg.crawl_id}-{cfg.hash()}.json"


@task(retries=2, retry_delay_seconds=30, cache_policy=NO_CACHE)
def discover_articles(data_root: str, cfg: MineTasksConfig) -> list[dict[str, Any]]:
    """Walk the category tree once per crawl: the found list is saved so a rerun makes no requests."""
    log = get_run_logger()
    root = DataRoot.from_any(data_root)
    path = _walk_cache_path(root, cfg)
    if root.exists(path):
        with root.open(path, "rb") as handle:
            found = json.loads(handle.read().decode("utf-8"))
        log.info("category walk of %s reused from %s (%d articles)", cfg.crawl_id, path, len(found))
        return list(found)
    with cfg.client() as client:
        articles = walk_categories(cfg.root_categories, client.category_members, cfg.max_depth)
        log.info("walked %s: %d articles in %d requests", cfg.base_url, len(articles), client.requests_made)
    found = [{"title": a.title, "pageid": a.pageid, "category_path": list(a.category_path)} for a in articles]
    root.makedirs(path.rsplit("/", 1)[0])
    tmp = f"{path}.tmp"
    with root.open(tmp, "wb") as handle:
        handle.write(json.dumps(found, ensure_ascii=False, indent=0).encode("utf-8"))
    root.fs.mv(tmp, path)
    return found


def found_from_dicts(found: Sequence[dict[str, Any]]) -> list[FoundArticle]:
    return [FoundArticle(d["title"], int(d["pageid"]), tuple(d["category_path"])) for d in found]


def mine_shard_hash(cfg: MineTasksConfig, members_hash: str) -> str:
    return shard_hash(cfg.hash(), members_hash)


@task(retries=2, retry_delay_seconds=30, cache_policy=NO_CACHE)
def mine_shard(
    data_root: str, shard: int, items: list[dict[str, Any]], cfg: MineTasksConfig, config_hash: str
) -> dict[str, Any]:
    """Fetch, parse and filter one shard of articles; rows that failed transiently are retried next run."""
    log = get_run_logger()
    root = DataRoot.from_any(data_root)
    planned = [PlannedArticle.from_dict(d) for d in items]

    def compute() -> ShardOutput:
        reuse = _reusable_rows(root, shard, config_hash)
        rows = []
        with cfg.client() as client:
            for item in planned:
                previous = reuse.get(item.title)
                rows.append(
                    previous if previous is not None else mined_row(item, client, cfg.filters, cfg.crawl_id)
                )
            requests = client.requests_made
        table = rows_to_table(rows)
        log.info("tasks shard %d: %d rows, %d reused, %d requests", shard, len(rows), len(reuse), requests)
        return ShardOutput(
            table=table,
            rows_in=len(planned),
            drops=drops_by_reason(table),
            errors=count_errors(table),
            extra={"crawl_id": cfg.crawl_id, "requests": requests},
        )

    return run_shard(root, DATASET, shard, config_hash, code_version(), compute)


def _reusable_rows(root: DataRoot, shard: int, config_hash: str) -> dict[str, dict[str, Any]]:
    """Rows of a previous run of this very shard that need no retry (anything but status="error")."""
    marker = read_marker(root, DATASET, shard)
    if marker is None or marker.config_hash != config_hash:
        return {}
    table = read_shard(root, DATASET, shard)
    if table is None:
        return {}
    return {row["title"]: row for row in table.to_pylist() if row["status"] != "error"}


def remove_stale_shards(root: DataRoot, n_shards: int) -> int:
    """Delete mined shards numbered n_shards and up (a re-crawl that shrank); imported shards stay."""
    version = get_schema(DATASET).version
    removed = 0
    for marker in list_markers(root, DATASET):
        if n_shards <= marker.shard < IMPORT_SHARD_BASE:
            # Marker first: a crash in between leaves an unmarked file, which readers of markers ignore.
            root.fs.rm(root.marker_path(DATASET, version, marker.shard))
            shard_path = root.shard_path(DATASET, version, marker.shard)
            if root.exists(shard_path):
                root.fs.rm(shard_path)
            removed += 1
    return removed
