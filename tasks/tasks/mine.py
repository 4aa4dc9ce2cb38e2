"""Prefect tasks of stage 1: discover articles (cached per crawl), mine one shard, write imported shards."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from storage.atomic import atomic_write_bytes
from storage.layout import DataRoot
from storage.schemas import get_schema
from storage.shards import delete_shard, list_markers
from tasks.common import config_hash, shard_hash
from tasks.retry_rules import retry_unless
from tasks.shard_runner import ShardJob, ShardOutput, count_errors, drops_by_reason, run_job
from tasks.shard_work import drop_shard_work, shard_work_dir
from tasks.tasks.config import MineTasksConfig
from tasks.tasks.imports import IMPORT_SHARD_BASE
from tasks.tasks.parse_attempts import read_counts, write_counts
from tasks.tasks.rows import mined_row, rows_to_table
from tasks.wikihow.client import RobotsUnavailable, SiteUnreachable, WikiHowError
from tasks.wikihow.crawl import FoundArticle, PlannedArticle, walk_categories

DATASET = "tasks"


def _walk_checkpoint(root: DataRoot, cfg: MineTasksConfig, category: str) -> str:
    version = get_schema(DATASET).version
    key = config_hash({"base_url": cfg.base_url, "max_depth": cfg.max_depth, "root": category})
    return f"{root.dataset_dir(DATASET, version)}/_crawl/{cfg.crawl_id}/{key}.json"


class NoArticlesFound(Exception):
    """The category walk found no article at all: a mistyped category or base URL, never a crawl to keep
    (it would replace the tasks already mined with nothing)."""


def require_articles(found: Sequence[Any], cfg: MineTasksConfig) -> None:
    """Refuse an empty walk before any shard is written or removed."""
    if not found:
        roots = ", ".join(repr(c) for c in cfg.root_categories) or "(none given)"
        raise NoArticlesFound(
            f"no wikiHow articles found under the root categories {roots} at {cfg.base_url}: check --category"
            " (tasks.root_categories) and --base-url; the tasks dataset is left as it was"
        )


def _refused_for_good(exc: BaseException) -> bool:
    """A request the site answered with 403/404/410 (an API path that is not there: a mistyped --base-url;
    robots.txt forbidding it), or an API answer or robots.txt redirecting off the site (a --base-url such as
    https://wikihow.com): asking again 30 s later gets the same answer."""
    return isinstance(exc, WikiHowError | RobotsUnavailable) and exc.permanent


# Prefect's retry rule: retry anything but a site that never answered (down or mistyped URL) or one that
# answered that the request can never succeed.
reachable = retry_unless(SiteUnreachable, final_if=_refused_for_good)


@task(retries=2, retry_delay_seconds=30, retry_condition_fn=reachable, cache_policy=NO_CACHE)
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
    atomic_write_bytes(root, path, json.dumps(data, ensure_ascii=False).encode("utf-8"))


def found_from_dicts(found: Sequence[dict[str, Any]]) -> list[FoundArticle]:
    return [FoundArticle(d["title"], int(d["pageid"]), tuple(d["category_path"])) for d in found]


def mine_own_hash(cfg: MineTasksConfig, members_hash: str) -> str:
    return shard_hash(cfg.row_hash(), members_hash)


@task(retries=2, retry_delay_seconds=30, retry_condition_fn=reachable, cache_policy=NO_CACHE)
def mine_shard(
    data_root: str, shard: int, items: list[dict[str, Any]], cfg: MineTasksConfig, own_hash: str
) -> dict[str, Any]:
    """Fetch, parse and filter one shard of articles; rows that failed transiently are retried next run."""
    log = get_run_logger()
    root = DataRoot.from_any(data_root)
    planned = [PlannedArticle.from_dict(d) for d in items]
    work = work_dir(root, shard, own_hash)

    def compute(previous: pa.Table | None) -> ShardOutput:
        reuse = {row["title"]: row for row in previous.to_pylist()} if previous is not None else {}
        aborts = read_counts(root, work)  # title -> aborted parses on earlier runs of this shard
        rows = []
        with cfg.client() as client, cfg.parser() as parser:
            for item in planned:
                earlier = reuse.get(item.title)
                if earlier is not None:
                    rows.append(earlier)
                    continue
                counted = aborts.get(item.title)
                rows.append(
                    mined_row(item, client, parser.parse, cfg.filters, cfg.crawl_id, parse_aborts=aborts)
                )
                if aborts.get(item.title) != counted:
                    # Saved at once: a shard that fails later (the site gone) and is retried still counts it.
                    write_counts(root, work, aborts)
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

    # With no row left to retry (a page given up on is a kept "failed" row) the counts are done with; those
    # of the shard's older hashes (other members, another config) are never read again: work_folders.
    job = ShardJob(DATASET, shard, own_hash, compute, reusable=_rows_needing_no_retry,
                   config={"crawl_id": cfg.crawl_id, "base_url": cfg.base_url}, work_folders=True)  # fmt: skip
    return run_job(root, job)


def work_dir(root: DataRoot, shard: int, own_hash: str) -> str:
    """The shard's bookkeeping folder (its parse-abort counts), laid out as the features stage's. Our own hash
    in the name: counts made under other members or another config never carry over."""
    return shard_work_dir(root, DATASET, shard, own_hash)


def _rows_needing_no_retry(table: pa.Table) -> pa.Table:
    """Rows of a previous run of this very shard that need no retry (anything but status="error")."""
    return table.filter(pc.not_equal(table.column("status"), "error"))


def remove_stale_shards(root: DataRoot, n_shards: int) -> int:
    """Delete mined shards numbered n_shards and up (a re-crawl that shrank); imported shards stay."""
    stale = [m.shard for m in list_markers(root, DATASET) if n_shards <= m.shard < IMPORT_SHARD_BASE]
    for shard in stale:
        delete_shard(root, DATASET, shard)
        drop_shard_work(root, DATASET, shard)  # its parse-abort counts: no longer a shard to count for
    return len(stale)
