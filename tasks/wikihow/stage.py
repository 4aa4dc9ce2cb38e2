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
from tasks.common import code_version, config_hash, shard_hash
from tasks.shard_runner import ShardOutput, count_errors, drops_by_reason, run_shard
from tasks.wikihow.config import MineTasksConfig
from tasks.wikihow.crawl import FoundArticle, PlannedArticle, walk_categories
from tasks.wikihow.import_stage import IMPORT_SHARD_BASE
from tasks.wikihow.rows import mined_row, rows_to_table

DATASET = "tasks"


def _walk_checkpoint(root: DataRoot, cfg: MineTasksConfig, category: str) -> str:
    version = get_schema(DATASET).version
    key = config_hash({"base_url": cfg.base_url, "max_depth": cfg.max_depth, "root": category})
    return f"{root.dataset_dir(DATASET, version)}/_crawl/{cfg.crawl_id}/{key}.json"


@task(retries=2, retry_delay_seconds=30, cache_policy=NO_CACHE)
def discover_articles(data_root: str, cfg: MineTasksConfig) -> list[dict[str, Any]]:
    """Walk the category tree once per crawl, one checkpoint file per root category.

    On real wikiHow the walk is thousands of requests: a crash or a retry resumes at the first root
    not yet walked, and a rerun of a finished crawl makes no request at all. Each root is walked on
    its own (a category under two roots is listed twice); an article keeps the path of the first
    root, in config order, that reached it.
    """
    log = get_run_logger()
    root = DataRoot.from_any(data_root)
    found: dict[str, dict[str, Any]] = {}
    walked = requests = 0
    with cfg.client() as client:
        for category in cfg.root_categories:
            path = _walk_checkpoint(root, cfg, category)
            if root.exists(path):
                with root.open(path, "rb") as handle:
                    articles = json.loads(handle.read().decode("utf-8"))
            else:
                walked += 1
                articles = [
                    {"title": a.title, "pageid": a.pageid, "category_path": list(a.category_path)}
                    for a in walk_categories([category], client.category_members, cfg.max_depth)
                ]
                _write_json(root, path, articles)
            for article in articles:
                found.setdefault(article["title"], article)
        requests = client.requests_made
    log.info("%s: %d articles under %d roots (%d walked now, %d requests)", cfg.crawl_id, len(found),
             len(cfg.root_categories), walked, requests)  # fmt: skip
    return sorted(found.values(), key=lambda a: str(a["title"]))


def _write_json(root: DataRoot, path: str, data: Any) -> None:
    root.makedirs(path.rsplit("/", 1)[0])
    tmp = f"{path}.tmp"
    with root.open(tmp, "wb") as handle:
        handle.write(json.dumps(data, ensure_ascii=False).encode("utf-8"))
    root.fs.mv(tmp, path)  # rename last: a half-written checkpoint is never read


def found_from_dicts(found: Sequence[dict[str, Any]]) -> list[FoundArticle]:
    return [FoundArticle(d["title"], int(d["pageid"]), tuple(d["category_path"])) for d in found]


def mine_shard_hash(cfg: MineTasksConfig, members_hash: str) -> str:
    return shard_hash(cfg.row_hash(), members_hash)


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
