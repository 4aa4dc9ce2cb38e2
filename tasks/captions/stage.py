"""One `videos` shard -> its `captions` and `clips` shards: download (or reuse) each .vtt, clean, cut."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from prefect import get_run_logger, task

from storage.atomic import atomic_write_bytes, remove_temp_files_of
from storage.layout import DataRoot
from storage.schemas import get_schema
from storage.shards import read_dataset, read_shard
from tasks.captions.config import FetchCaptionsConfig
from tasks.captions.rows import UNAVAILABLE, caption_row, process_track
from tasks.common import shard_hash
from tasks.run_threads import map_in_context
from tasks.search.info_store import load_reusable_info, save_info
from tasks.shard_runner import (
    SecondaryOutput,
    ShardInput,
    ShardJob,
    ShardOutput,
    count_errors,
    drops_by_reason,
    run_job,
)
from tasks.youtube.access import YoutubeAccess
from tasks.youtube.client import VideoError
from tasks.youtube.errors import ErrorKind
from tasks.youtube.ids import check_video_id, is_caption_lang
from tasks.youtube.messages import YTDLP_KEY
from tasks.youtube.retry import not_halted
from tasks.youtube.thread_clients import ThreadClients

DATASET = "captions"
CLIPS = "clips"
VTT_DIR = "vtt"


INPUTS = (ShardInput("videos", "search_videos"),)


# How a track becomes words, segments and clips (vtt.py and its modules, clips.py, rows.py) changes the rows
# as surely as a config field does: bump this with every change to what a track gives, so a data root's
# finished captions shards are redone on the next run, from their kept .vtt files (no network), and the
# stages after them rerun as for any rewritten upstream shard. Left alone, old shards would keep the old
# reading beside new ones (a re-crawl's) read the new way.
# 2: capitals speaker labels dropped on manual tracks ("SURMA:", French "J.-L. M. :"), italics typed as
# entities dropped, zero-width spaces end words, a lone 20 ms cue no longer makes a track ASR.
# 3: a rolling cue whose bottom line is blank holds the finished line and types nothing (it came out twice).
# 4: ASR dashes are words, not speaker marks; a line revised in its flash cue is not read again on top.
# 5: a numbered capitals label on a manual track ("SPEAKER 1:") is a speaker mark, not speech; a line that
# a dropped note leaves with punctuation alone ("[INAUDIBLE].") is no segment.
# 6: a lower- or sentence-case note that names a sound ("(audience laughing)", "(Laughter)") goes; an aside stays.
# 7: Chinese and Japanese words are counted per character, not per space-separated line (n_words, min_words);
# other languages' sound notes go ("(Applaudissements)", "(Risas)", "（笑）").
# 8: Thai, Lao, Khmer and Burmese words are counted by ICU's dictionary, not one per space-separated run; a
# sound note may hold a full stop or an exclamation mark ("(Il rit. )", "(rires !)"); a mixed-case label that
# opens three lines or more of a manual track is a speaker ("Mélenchon :", "Journalist:") and goes.
# 9: Russian, Arabic, Hindi, Thai, Vietnamese and Indonesian sound notes go ("(Аплодисменты)", "(हँसी)").
# 10: a cue's text set off from its timing line by a blank line is read (it was dropped); an uploaded
# subtitle entry's number and timing swallowed into a cue are no words, and its text a cue of its own; a
# track of unknown kind styled with colours other than the ASR greys is manual.
# 11: a .vtt file that is YouTube's timedtext XML (srv1, srv2, srv3) is read (it failed with no cue); the
# bump redoes finished shards, whose failed rows are otherwise kept as they were and never read again.
CLEANER_VERSION = 11


def captions_own_hash(cfg: FetchCaptionsConfig) -> str:
    """Our output-changing fields and the cleaner's version (the runner chains the `videos` shard's
    content to it)."""
    return shard_hash(cfg.data_hash(), f"cleaner-{CLEANER_VERSION}")


def vtt_relpath(video_id: str, lang: str) -> str:
    """Where a video's raw track is kept for audit and reuse: `vtt/{id}.{lang}.vtt`."""
    if not is_caption_lang(lang):  # the probe picks only such keys; a crafted row may hold another
        raise ValueError(f"bad caption language key {lang!r}")
    return f"{VTT_DIR}/{check_video_id(video_id)}.{lang}.vtt"


def task_categories(root: DataRoot) -> dict[str, str | None]:
    """task_id -> level-1 category (the last element of `category_path`, which runs leaf ... level-1)."""
    table = read_dataset(root, "tasks").to_table(columns=["task_id", "category_path"])
    ids, paths = table.column("task_id").to_pylist(), table.column("category_path").to_pylist()
    return {task_id: (path[-1] if path else None) for task_id, path in zip(ids, paths, strict=True)}


class CaptionRun:
    """The work of one shard: per video, reuse or download its track, then clean and cut it."""

    def __init__(
        self,
        root: DataRoot,
        cfg: FetchCaptionsConfig,
        categories: Mapping[str, str | None],
        clients: ThreadClients,
    ) -> None:
        self.root, self.cfg, self.categories, self.clients = root, cfg, categories, clients
        self._lock = threading.Lock()
        self.stats = {"reused_vtt": 0, "downloaded_vtt": 0, "reprobed": 0, "reused_rows": 0}

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

    def fetch(self, video: Mapping[str, Any], rel: str) -> bytes:
        """The kept .vtt if there is one, else download it through yt-dlp and keep it."""
        path = self.root.path(rel)
        if self.root.exists(path):
            self._count("reused_vtt")
            with self.root.open(path, "rb") as handle:
                return bytes(handle.read())
        vid = video["video_id"]
        client = self.clients.get()
        max_age_s = self.clients.access.info_reuse_max_age_s
        info = load_reusable_info(self.root, video.get("info_path") or vid, max_age_s=max_age_s)
        if info is None:  # missing, unusable, or old enough that its caption URLs may have expired
            info = client.probe(video.get("url") or client.video_url(vid))
            save_info(self.root, vid, info)
            self._count("reprobed")
        data = client.captions(info, video["caption_lang"], video["caption_kind"])
        atomic_write_bytes(self.root, self.root.path(rel), data)
        self._count("downloaded_vtt")
        return data

    def one(self, video: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """One video's `captions` row and clip rows; per-video failures become rows, a halt raises."""
        try:
            rel = vtt_relpath(video["video_id"], str(video.get("caption_lang") or ""))
        except ValueError as exc:
            return caption_row(video, None, status="failed", error=str(exc), drop_reason=UNAVAILABLE), []
        try:
            data = self.fetch(video, rel)
        except VideoError as exc:
            if exc.kind is ErrorKind.UNAVAILABLE:
                return caption_row(video, None, status="failed", error=str(exc), drop_reason=UNAVAILABLE), []
            return caption_row(video, None, status="error", error=str(exc)), []
        except OSError as exc:
            return caption_row(video, None, status="error", error=f"{type(exc).__name__}: {exc}"), []
        return process_track(
            video, data, self.cfg, vtt_path=rel, category=self.categories.get(video["task_id"])
        )

    def run(
        self, videos: list[dict[str, Any]], previous: pa.Table | None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        # Permanent failures of an earlier run of this same shard are kept as they were, not retried.
        failed = {
            r["video_id"]: r
            for r in (previous.to_pylist() if previous is not None else [])
            if r["status"] == "failed"
        }
        todo = [v for v in videos if v["video_id"] not in failed]
        self.stats["reused_rows"] = len(videos) - len(todo)
        with ThreadPoolExecutor(max_workers=self.clients.access.concurrency) as pool:
            # In the run's context: yt-dlp's reason for a failed download reaches the run's logs (the UI).
            done = dict(zip([v["video_id"] for v in todo], map_in_context(pool, self.one, todo), strict=True))
        rows: list[dict[str, Any]] = []
        clips: list[dict[str, Any]] = []
        for v in videos:
            row, video_clips = done.get(v["video_id"]) or (failed[v["video_id"]], [])
            rows.append(row)
            clips.extend(video_clips)
        return rows, clips


def remove_killed_vtt_writes(root: DataRoot, videos: pa.Table) -> list[str]:
    """Delete the temp files (`vtt/.tmp-<uuid>-<id>.<lang>.vtt`) of `.vtt` writes of this shard's videos that a
    kill cut short: each kill left one per download in flight, and no run ever removed them. Called in the
    shard's work, under its lock (tasks/shard_runner.py): a run writing this shard's tracks is gone, while
    another shard's videos may be downloading now and theirs stay. Returns their paths."""
    ids = set(videos.column("video_id").to_pylist())
    return remove_temp_files_of(root, root.path(VTT_DIR), lambda name: name.split(".", 1)[0] in ids)


def kept_videos(table: pa.Table) -> list[dict[str, Any]]:
    """The `videos` rows the captions stage works on: kept, probed fine, with a chosen track."""
    return [r for r in table.to_pylist() if r["keep"] and r["status"] == "ok" and r.get("caption_lang")]


def _permanent_failures(table: pa.Table) -> pa.Table:
    # Permanent failures of an earlier run are kept as they were, not retried; the rest is cheap to
    # redo from the kept .vtt files.
    return table.filter(pc.equal(table.column("status"), "failed"))


@task(name="captions-shard", retries=2, retry_delay_seconds=60, retry_condition_fn=not_halted)
def captions_shard(
    root_url: str, shard: int, cfg: FetchCaptionsConfig, access: YoutubeAccess
) -> dict[str, Any]:
    """Write `clips` shard k, then `captions` shard k (whose marker proves both); failed videos retry next run."""
    logger = get_run_logger()
    root = DataRoot.from_any(root_url)
    stats: dict[str, int] = {}
    said: dict[str, int] = {}

    def compute(previous: pa.Table | None) -> ShardOutput:
        videos_table = read_shard(root, "videos", shard)
        assert videos_table is not None  # the runner checked its marker
        videos = kept_videos(videos_table)
        for path in remove_killed_vtt_writes(root, videos_table):
            logger.info("captions shard %d: removed leftover %s", shard, path.rsplit("/", 1)[1])
        with ThreadClients(access) as clients:  # secrets read here, in the task's thread
            run = CaptionRun(root, cfg, task_categories(root), clients)
            rows, clip_rows = run.run(videos, previous)
        stats.update(run.stats)
        clips = pa.Table.from_pylist(clip_rows, schema=get_schema(CLIPS).schema)
        table = pa.Table.from_pylist(rows, schema=get_schema(DATASET).schema)
        said.update(clients.counts)  # what yt-dlp said, for the stage summary
        extra = {**run.stats, "clips": clips.num_rows, "requests": clients.requests, YTDLP_KEY: said}
        return ShardOutput(
            table,
            rows_in=len(videos),
            drops=drops_by_reason(table),
            errors=count_errors(table),
            extra=extra,
            secondary=[
                SecondaryOutput(CLIPS, clips, len(videos), [("video_id", "ascending"), ("idx", "ascending")])
            ],
        )

    job = ShardJob(
        DATASET, shard, captions_own_hash(cfg), compute, inputs=INPUTS, reusable=_permanent_failures,
        config=cfg.data_fields(), secondaries=(CLIPS,),
    )  # fmt: skip
    manifest = {**run_job(root, job), YTDLP_KEY: said}
    logger.info(
        "captions shard %d: %d videos -> %d rows, %d errors%s %s",
        shard,
        manifest["rows_in"],
        manifest["rows_out"],
        manifest["errors"],
        " (cached)" if manifest["cached"] else "",
        stats,
    )
    return manifest
