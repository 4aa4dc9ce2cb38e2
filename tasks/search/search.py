"""Phase A: one shard of tasks -> their flat search hits, ranked and prefiltered (`search_results`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from prefect import task

from storage.layout import DataRoot
from storage.schemas import get_schema
from storage.shards import read_marker, read_shard
from tasks.common import shard_hash
from tasks.search.config import SearchVideosConfig
from tasks.shard_runner import ShardJob, ShardOutput, count_errors, drops_by_reason, run_job
from tasks.youtube.access import YoutubeAccess
from tasks.youtube.client import VideoError, YoutubeClient
from tasks.youtube.decision import INVALID_ID, cell_text, count, measure, prefilter_reason
from tasks.youtube.errors import ErrorKind, StageHalted
from tasks.youtube.ids import is_video_id, shorten
from tasks.youtube.messages import YTDLP_KEY
from tasks.youtube.retry import not_halted, run_logger

DATASET = "search_results"
NO_RESULTS = "no_results"


class EverySearchFailed(Exception):
    """Every task's search of a crawl ended in an error (YouTube unreachable, an outage): the stage fails
    as a whole, so a scheduled re-crawl does not complete an empty generation and trigger features and
    training; the error rows are kept, and the next run (a re-crawl resumes its crawl) searches again."""


def search_own_hash(cfg: SearchVideosConfig, tasks: Sequence[Mapping[str, Any]]) -> str:
    """Config hash chained with the shard's task list, so a changed task list reruns the shard."""
    listing = json.dumps([[t["task_id"], t["title"]] for t in tasks], ensure_ascii=False)
    return shard_hash(cfg.data_hash(), hashlib.sha256(listing.encode()).hexdigest()[:16])


def _row(item: Mapping[str, Any], query: str, crawl_id: str, **values: Any) -> dict[str, Any]:
    row = dict.fromkeys(get_schema(DATASET).schema.names)
    row.update(task_id=item["task_id"], query=query, crawl_id=crawl_id, keep=False, status="ok")
    row.update(values)
    return row


def hit_rows(
    item: Mapping[str, Any],
    query: str,
    entries: Sequence[Mapping[str, Any]],
    cfg: SearchVideosConfig,
    video_url: Callable[[str], str],
) -> list[dict[str, Any]]:
    """Rows for one task's hits; an id that is not a plain video id is a failed row, never a path."""
    if not entries:
        return [_row(item, query, cfg.crawl_id, drop_reason=NO_RESULTS)]
    rows = []
    for rank, entry in enumerate(entries, 1):
        raw = entry.get("id")
        hit = {"rank": rank, "title": cell_text(entry.get("title"))}
        if not is_video_id(raw):
            error = f"not a video id: {shorten(repr(raw))}"
            rows.append(
                _row(item, query, cfg.crawl_id, **hit, drop_reason=INVALID_ID, status="failed", error=error)
            )
            continue
        # The probe's own number rule: what no real video has (NaN, a negative, a count past int64) is
        # unknown here, so the probe decides on it; a cell Arrow refuses would fail the whole shard.
        duration = measure(entry.get("duration"))
        views = count(entry.get("view_count"))
        live = cell_text(entry.get("live_status"), 64)
        reason = prefilter_reason(duration, views, cfg.limits(), live)
        facts = {"duration_s": duration, "view_count": views}
        rows.append(
            _row(item, query, cfg.crawl_id, **hit, **facts, video_id=raw, url=video_url(str(raw)),
                 keep=reason is None, drop_reason=reason)
        )  # fmt: skip
    return rows


def search_tasks(
    tasks: Sequence[Mapping[str, Any]],
    cfg: SearchVideosConfig,
    client: YoutubeClient,
    previous: pa.Table | None = None,
) -> tuple[list[dict[str, Any]], StageHalted | None]:
    """Search every task not already searched cleanly in `previous`; stop early on a halt."""
    done: dict[str, list[dict[str, Any]]] = {}
    for row in previous.to_pylist() if previous is not None else []:
        done.setdefault(row["task_id"], []).append(row)
    rows: list[dict[str, Any]] = []
    halted: StageHalted | None = None
    for item in tasks:
        query = cfg.query(item["title"])
        old = done.get(item["task_id"])
        if old and all(r["status"] != "error" for r in old):
            rows.extend(old)
            continue
        if halted is not None:
            rows.append(_row(item, query, cfg.crawl_id, status="error", error="not searched: stage halted"))
            continue
        try:
            entries = client.search(query, cfg.max_results, cfg.search_prefix)
        except VideoError as exc:
            status = "error" if exc.kind is ErrorKind.TRANSIENT else "failed"
            rows.append(_row(item, query, cfg.crawl_id, status=status, error=str(exc)))
            continue
        except StageHalted as exc:
            halted = exc
            rows.append(
                _row(item, query, cfg.crawl_id, status="error", error=f"not searched: {exc.kind.value}")
            )
            continue
        rows.extend(hit_rows(item, query, entries, cfg, client.video_url))
    return rows, halted


def count_hits(table: pa.Table) -> int:
    """The rows that are search hits: a task whose search failed (a timeout, a refused query) has a row with
    neither rank nor video id, which is no hit; a hit whose id is no video id keeps its rank."""
    hit = pc.or_(pc.is_valid(table.column("rank")), pc.is_valid(table.column("video_id")))
    return int(pc.sum(hit.cast(pa.int64())).as_py() or 0)


def every_search_failed(manifests: Sequence[Mapping[str, Any]]) -> tuple[int, int] | None:
    """(errors, tasks) when every task of these search shards' manifests ended in an error row, else None.

    A task whose search errored has exactly one row, its error row, so a shard's `errors` counts its failed
    tasks; a shard skipped as finished had none (a marker with errors is never skipped). A crawl with
    some searches failed still goes on: it reports them (`search_errors`) and its next run retries them."""
    tasks = sum(int(m["rows_in"]) for m in manifests)
    errors = sum(int(m["errors"]) for m in manifests)
    return (errors, tasks) if tasks > 0 and errors >= tasks else None


def first_error(root: DataRoot, shards: Iterable[int]) -> str | None:
    """The error text of the first failed search in these shards (what the user reads first)."""
    for shard in shards:
        table = read_shard(root, DATASET, shard)
        if table is None:
            continue
        for error in table.column("error").to_pylist():
            if error:
                return str(error)
    return None


def check_searches(
    root: DataRoot, crawl_id: str, shards: Sequence[int], manifests: Sequence[Mapping[str, Any]]
) -> None:
    """Raise EverySearchFailed when no search of this crawl's shards got an answer."""
    failed = every_search_failed(manifests)
    if failed is None:
        return
    errors, tasks = failed
    example = first_error(root, shards)
    raise EverySearchFailed(
        f"every search of {crawl_id} failed ({errors} of {tasks} tasks"
        + (f"; first error: {shorten(example, 200)}" if example else "")
        + "): nothing was planned or probed; run the same command again to search again "
        "(a re-crawl resumes its crawl)"
    )


def shard_hits(root: DataRoot, shard: int, rows_out: int) -> int:
    """A written shard's hits, from its marker (written before they were recorded: counted from its file)."""
    marker = read_marker(root, DATASET, shard)
    if marker is not None and "hits" in marker.extra:
        return int(marker.extra["hits"])
    table = read_shard(root, DATASET, shard)
    return count_hits(table) if table is not None else rows_out


@task(name="search-shard", retries=2, retry_delay_seconds=60, retry_condition_fn=not_halted)
def search_shard(
    root_url: str, shard: int, tasks: list[dict[str, Any]], cfg: SearchVideosConfig, access: YoutubeAccess
) -> dict[str, Any]:
    """Search one shard of tasks and write `search_results` shard `shard`; a halt saves progress, then raises."""
    logger = run_logger()
    root = DataRoot.from_any(root_url)
    halted: list[StageHalted] = []
    said: dict[str, int] = {}

    def compute(previous: pa.Table | None) -> ShardOutput:
        with YoutubeClient(access) as client:  # secrets read here, in the task's thread
            rows, halt = search_tasks(tasks, cfg, client, previous)
        if halt is not None:
            halted.append(halt)
        said.update(client.counts)
        table = pa.Table.from_pylist(rows, schema=get_schema(DATASET).schema)
        return ShardOutput(
            table,
            rows_in=len(tasks),
            drops=drops_by_reason(table),
            errors=count_errors(table),
            extra={
                "hits": count_hits(table),  # rows_out also counts the rows of searches that failed
                "requests": client.requests,
                "http_requests": client.http_requests,
                "ytdlp_s": round(client.ytdlp_s, 3),
                YTDLP_KEY: client.counts,
            },
        )

    job = ShardJob(
        DATASET, shard, search_own_hash(cfg, tasks), compute, reusable=lambda table: table,
        sort_by=[("task_id", "ascending"), ("rank", "ascending")],
        config=cfg.data_fields(),
    )  # fmt: skip
    manifest = {**run_job(root, job), YTDLP_KEY: said}
    manifest["hits"] = shard_hits(root, shard, manifest["rows_out"])
    logger.info(
        "search shard %d: %d tasks -> %d hits, %d errors%s",
        shard,
        len(tasks),
        manifest["hits"],
        manifest["errors"],
        " (cached)" if manifest["cached"] else "",
    )
    if halted:
        raise halted[0]
    return manifest
