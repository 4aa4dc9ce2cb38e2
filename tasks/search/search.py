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
from storage.shard_lock import shard_lock
from storage.shards import delete_shard, read_marker, read_shard
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
    """No task's search of a crawl got an answer (YouTube unreachable, an outage, every query refused): the
    stage fails as a whole, so a scheduled re-crawl does not complete an empty generation and trigger
    features and training; the next run (a re-crawl resumes its crawl) searches again."""


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


def count_refused(table: pa.Table) -> int:
    """The tasks whose search was refused for good (status failed: a 404, "does not exist"): a row with
    neither rank nor video id, which a rerun keeps rather than searching again (an id that is no video id
    is a failed row too, but a hit: it keeps its rank)."""
    no_hit = pc.and_(pc.is_null(table.column("rank")), pc.is_null(table.column("video_id")))
    refused = pc.and_(no_hit, pc.equal(table.column("status"), "failed"))
    return int(pc.sum(refused.cast(pa.int64())).as_py() or 0)


def every_search_failed(manifests: Sequence[Mapping[str, Any]]) -> tuple[int, int, int] | None:
    """(errors, refused, tasks) when no task of these search shards' manifests got an answer, else None.

    A task whose search failed has exactly one row: an error row (retried by the next run), counted by a
    shard's `errors`, or a refused one (status failed), counted by its `refused`; a shard skipped as
    finished had no errors (a marker with errors is never skipped). A crawl with some searches failed
    still goes on: it reports them (`search_errors`) and its next run retries the errors."""
    tasks = sum(int(m["rows_in"]) for m in manifests)
    errors = sum(int(m["errors"]) for m in manifests)
    refused = sum(int(m.get("refused", 0)) for m in manifests)
    return (errors, refused, tasks) if tasks > 0 and errors + refused >= tasks else None


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
    """Raise EverySearchFailed when no search of this crawl's shards got an answer.

    A refused search is a verdict on its query, kept and never asked again; but when every query of a
    crawl is refused, the site or the settings are at fault (a wrong site URL or search prefix, an address
    the site turns away), not the tasks. Kept, those refusals made every rerun of the crawl fail at once
    without a request, even once the settings were fixed; so the shards holding them are removed here
    (marker first, under the shard's lock, as the shard runner writes them) and the rerun searches their
    tasks again. Error rows are kept: the rerun retries them anyway."""
    failed = every_search_failed(manifests)
    if failed is None:
        return
    errors, refused, tasks = failed
    example = first_error(root, shards)
    if refused:
        for m in manifests:
            if int(m.get("refused", 0)):
                with shard_lock(root, DATASET, int(m["shard"])):
                    delete_shard(root, DATASET, int(m["shard"]))
    first = f"; first error: {shorten(example, 200)}" if example else ""
    if not refused:
        raise EverySearchFailed(
            f"every search of {crawl_id} failed ({errors} of {tasks} tasks{first}): nothing was planned or "
            "probed; run the same command again to search again (a re-crawl resumes its crawl)"
        )
    raise EverySearchFailed(
        f"every search of {crawl_id} failed ({errors + refused} of {tasks} tasks, {refused} refused{first}): "
        "nothing was planned or probed; a site that refuses every query points at the settings, not the "
        "tasks: check youtube.site_url (--demo-url), search.search_prefix, youtube.cookies and youtube.proxy, "
        "then run the same command again to search every task again (a re-crawl resumes its crawl)"
    )


def shard_count(root: DataRoot, shard: int, key: str, count: Callable[[pa.Table], int], default: int) -> int:
    """A written shard's count `key` (`hits`, `refused`), from its marker (a marker written before it was
    recorded: counted from its file; `default` without one)."""
    marker = read_marker(root, DATASET, shard)
    if marker is not None and key in marker.extra:
        return int(marker.extra[key])
    table = read_shard(root, DATASET, shard)
    return count(table) if table is not None else default


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
                "refused": count_refused(table),
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
    manifest["hits"] = shard_count(root, shard, "hits", count_hits, manifest["rows_out"])
    manifest["refused"] = shard_count(root, shard, "refused", count_refused, 0)
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
