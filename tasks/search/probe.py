"""Phase C: one `videos` shard plan -> one probe per new video, the keep/drop decision, the kept info file."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from prefect import task

from storage.atomic import remove_temp_files_of
from storage.layout import DataRoot
from storage.schemas import get_schema
from storage.shards import read_marker
from tasks.common import config_hash, shard_hash
from tasks.run_threads import map_in_context
from tasks.search.config import SearchVideosConfig
from tasks.search.info_store import INFO_DIR, load_info, save_info
from tasks.search.plans import RECHECK, load_video_plan
from tasks.shard_runner import ShardJob, ShardOutput, count_errors, drops_by_reason, run_job
from tasks.youtube.access import YoutubeAccess
from tasks.youtube.client import VideoError
from tasks.youtube.decision import INVALID_METADATA, UNAVAILABLE, Decision, Limits, caption_state, decide
from tasks.youtube.errors import ErrorKind, StageHalted
from tasks.youtube.messages import YTDLP_KEY
from tasks.youtube.retry import not_halted, run_logger
from tasks.youtube.sanitize import info_problem
from tasks.youtube.thread_clients import ThreadClients

DATASET = "videos"


def probe_own_hash(cfg: SearchVideosConfig, plan: Mapping[str, Any]) -> str:
    """Only the limits and the plan decide a shard's rows (access, search and crawl settings do not)."""
    own = config_hash({"max_duration_s": cfg.max_duration_s, "min_views": cfg.min_views})
    listing = json.dumps([plan["crawl_id"], [v["video_id"] for v in plan["videos"]]])
    return shard_hash(own, hashlib.sha256(listing.encode()).hexdigest()[:16])


def video_row(
    planned: Mapping[str, Any], crawl_id: str, url: str, decision: Decision | None = None, **values: Any
) -> dict[str, Any]:
    """A `videos` row: the plan's facts, then the decision's, then explicit values (status, error...)."""
    row = dict.fromkeys(get_schema(DATASET).schema.names)
    row.update(
        video_id=planned["video_id"],
        task_id=planned.get("task_id"),
        rank=planned.get("rank"),
        url=url,
        title=planned.get("title"),
        keep=False,
        status="ok",
        crawl_id=crawl_id,
    )
    if decision is not None:
        row.update(
            title=decision.title or row["title"],
            channel=decision.channel,
            upload_date=decision.upload_date,
            duration_s=decision.duration_s,
            view_count=decision.view_count,
            live_status=decision.live_status,
            caption_lang=decision.caption.lang if decision.caption else None,
            caption_kind=decision.caption.kind if decision.caption else None,
            keep=decision.keep,
            drop_reason=decision.drop_reason,
        )
    row.update(values)
    return row


class ProbeRun:
    """Probes the videos of one plan, reusing finished rows and fresh info files, stopping on a halt."""

    def __init__(
        self,
        root: DataRoot,
        cfg: SearchVideosConfig,
        plan: Mapping[str, Any],
        clients: ThreadClients,
        seen_before: Mapping[str, str] | None = None,
    ) -> None:
        self.root, self.cfg, self.plan, self.clients = root, cfg, plan, clients
        self.crawl_id = str(plan["crawl_id"])
        self.limits: Limits = cfg.limits()
        # Only info probed for this plan can stand in for a probe (a re-check must really look again).
        created = float(plan.get("created_at") or 0.0)
        self.info_max_age_s = min(clients.access.info_reuse_max_age_s, max(0.0, time.time() - created) + 1.0)
        self.halt = threading.Event()
        self.halted: StageHalted | None = None
        self.stats = {"probed": 0, "reused_rows": 0, "reused_info": 0}
        # A re-check writes no row for a video still there: its caption state is kept here instead and
        # goes to the shard's marker (`captions_seen`), where the re-crawl's change record reads it. A rerun
        # of the shard (its errors retried) starts from what the earlier run saw (`seen_before`).
        self.captions_seen: dict[str, str] = dict(seen_before or {})
        self._lock = threading.Lock()

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

    def one(self, planned: Mapping[str, Any]) -> dict[str, Any]:
        vid = planned["video_id"]
        client = self.clients.get()
        url = client.video_url(vid)
        info = load_info(self.root, vid, self.info_max_age_s)
        probed = info is None
        if info is not None:
            self._count("reused_info")  # probed by a run that died before writing its shard
        else:
            if self.halt.is_set():
                return video_row(
                    planned, self.crawl_id, url, status="error", error="not probed: stage halted"
                )
            try:
                info = client.probe(url)
            except VideoError as exc:
                if exc.kind is ErrorKind.UNAVAILABLE:
                    return video_row(
                        planned, self.crawl_id, url, status="failed", error=str(exc), drop_reason=UNAVAILABLE
                    )
                return video_row(planned, self.crawl_id, url, status="error", error=str(exc))
            except StageHalted as exc:
                with self._lock:
                    self.halted = self.halted or exc
                self.halt.set()
                return video_row(
                    planned, self.crawl_id, url, status="error", error=f"not probed: {exc.kind.value}"
                )
            except RecursionError:
                # yt-dlp's own sanitize_info recurses: metadata nested some hundred levels deep overflows it.
                return self._unusable(planned, url, "nested too deeply to walk")
            self._count("probed")
        problem = info_problem(info)
        if problem is not None:
            return self._unusable(planned, url, problem)
        if probed:
            save_info(self.root, vid, info)
        decision = decide(info, self.limits)
        if self.plan.get("source") == RECHECK:
            with self._lock:
                self.captions_seen[vid] = caption_state(info)
        return video_row(planned, self.crawl_id, url, decision, info_path=f"info/{vid}.info.json")

    def _unusable(self, planned: Mapping[str, Any], url: str, problem: str) -> dict[str, Any]:
        """Info that must not be kept (see `info_problem`): a permanent row, and no info file written.

        "failed", not "error": the site would send the same bytes on a retry, so probing again every
        run would only cost requests; a re-check crawl probes the video afresh anyway.
        """
        error = f"unusable metadata: {problem}"
        return video_row(
            planned, self.crawl_id, url, status="failed", error=error, drop_reason=INVALID_METADATA
        )

    def run(self, previous: pa.Table | None) -> list[dict[str, Any]]:
        """Rows in plan order; ok and permanently failed rows of `previous` are kept as they were."""
        finished = {
            r["video_id"]: r
            for r in (previous.to_pylist() if previous is not None else [])
            if r["status"] in ("ok", "failed")
        }
        videos: Sequence[Mapping[str, Any]] = self.plan["videos"]
        # A re-check seen fine has no row to keep, only its `captions_seen` entry: without it, a rerun
        # for one timed-out video probed every video of the shard again.
        todo = [
            v for v in videos if v["video_id"] not in finished and v["video_id"] not in self.captions_seen
        ]
        self.stats["reused_rows"] = len(videos) - len(todo)
        with ThreadPoolExecutor(max_workers=self.clients.access.concurrency) as pool:
            probed = dict(
                zip([v["video_id"] for v in todo], map_in_context(pool, self.one, todo), strict=True)
            )
        rows = [r for v in videos if (r := finished.get(v["video_id"]) or probed.get(v["video_id"]))]
        if self.plan.get("source") == RECHECK:
            # A re-check records only what changed: videos now gone (and errors, to retry them); a video
            # gone before (`gone_since`) and still gone is no change.
            still_gone = {v["video_id"] for v in videos if v.get("gone_since")}
            rows = [
                {**r, "unavailable_since": self.crawl_id} if r["drop_reason"] == UNAVAILABLE else r
                for r in rows
                if r["status"] != "ok"
                and not (r["drop_reason"] == UNAVAILABLE and r["video_id"] in still_gone)
            ]
        return rows


def _finished_rows(table: pa.Table) -> pa.Table:
    """Probed fine or gone for good: kept as they were; errors are probed again."""
    return table.filter(pc.is_in(table.column("status"), pa.array(["ok", "failed"])))


def remove_killed_info_writes(root: DataRoot, plan: Mapping[str, Any]) -> list[str]:
    """Delete the temp files (`info/.tmp-<uuid>-<id>.info.json`) of info writes of this shard's videos that a
    kill cut short. Called in the shard's work, under its lock (tasks/shard_runner.py): a run probing these
    videos is gone, while another shard's (another crawl's run beside this one) may be writing now, and
    theirs stay. Returns their paths."""
    ids = {v["video_id"] for v in plan["videos"]}
    return remove_temp_files_of(root, root.path(INFO_DIR), lambda name: name.split(".", 1)[0] in ids)


@task(name="probe-shard", retries=2, retry_delay_seconds=60, retry_condition_fn=not_halted)
def probe_shard(root_url: str, shard: int, cfg: SearchVideosConfig, access: YoutubeAccess) -> dict[str, Any]:
    """Probe one planned `videos` shard (its plan is read from the data root); failed videos only are retried."""
    logger = run_logger()
    root = DataRoot.from_any(root_url)
    plan = load_video_plan(root, shard)
    runs: list[ProbeRun] = []
    said: dict[str, int] = {}

    def compute(previous: pa.Table | None) -> ShardOutput:
        for path in remove_killed_info_writes(root, plan):
            logger.info("videos shard %d: removed leftover %s", shard, path.rsplit("/", 1)[1])
        # What a re-check's earlier run of this shard saw (its rows reused, `previous`, come with it).
        earlier = read_marker(root, DATASET, shard) if previous is not None else None
        seen_before = (earlier.extra.get("captions_seen") or {}) if earlier is not None else {}
        with ThreadClients(access) as clients:  # secrets read here, in the task's thread
            probe = ProbeRun(root, cfg, plan, clients, seen_before)
            runs.append(probe)
            table = pa.Table.from_pylist(probe.run(previous), schema=get_schema(DATASET).schema)
        said.update(clients.counts)
        extra = {
            **probe.stats,
            "requests": clients.requests,
            "http_requests": clients.http_requests,
            "ytdlp_s": round(clients.ytdlp_s, 3),
            YTDLP_KEY: clients.counts,
            **(
                {"captions_seen": dict(sorted(probe.captions_seen.items()))}
                if plan.get("source") == RECHECK
                else {}
            ),
        }
        return ShardOutput(
            table,
            rows_in=len(plan["videos"]),
            drops=drops_by_reason(table),
            errors=count_errors(table),
            extra=extra,
        )

    limits = {"max_duration_s": cfg.max_duration_s, "min_views": cfg.min_views}
    job = ShardJob(
        DATASET, shard, probe_own_hash(cfg, plan), compute, reusable=_finished_rows,
        config={**limits, "crawl_id": plan["crawl_id"]},
    )  # fmt: skip
    manifest = {**run_job(root, job), YTDLP_KEY: said}
    logger.info(
        "videos shard %d: %d videos, %d kept-or-dropped rows, %d errors%s",
        shard,
        len(plan["videos"]),
        manifest["rows_out"],
        manifest["errors"],
        " (cached)" if manifest["cached"] else "",
    )
    if runs and runs[0].halted is not None:
        raise runs[0].halted
    return manifest
