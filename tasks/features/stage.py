"""The frame_features shard task: download kept videos of `videos` shard k, extract, write shard k."""

from __future__ import annotations

import io
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from prefect import get_run_logger, task

from models.encoders import cuda_device_ids, pick_device
from models.torch_files import NotACheckpoint
from storage.atomic import atomic_write_bytes, is_temp_name
from storage.layout import DataRoot
from storage.shards import read_marker, read_parquet_file, read_shard
from tasks.audio.sources import keep_track, remove_killed_copies, track_dir
from tasks.features.attempts import retry_corrupt
from tasks.features.config import ExtractFeaturesConfig
from tasks.features.crash_guard import CheckRequest, DecodeGuard, InFlight
from tasks.features.decoder_choice import IN_PROCESS
from tasks.features.downloads import cap_drops, download_jobs
from tasks.features.extractor import INTERRUPTED, Extractor, VideoResult
from tasks.features.pipeline import leased_extractor
from tasks.features.precision_record import (
    MARKER_KEY,
    marker_precisions,
    tag_part,
    untag_part,
    video_precisions,
)
from tasks.features.rows import result_table
from tasks.features.weights import WeightsMissing
from tasks.gpu_limit import gpu_slot
from tasks.interrupts import ItemInterrupted, interrupt_seen, stop_name
from tasks.progress import advance
from tasks.retry_rules import retry_unless
from tasks.shard_runner import ShardInput, ShardJob, ShardOutput, run_job
from tasks.shard_work import shard_work_dir
from tasks.youtube.access import YoutubeAccess
from tasks.youtube.client import YoutubeClient
from tasks.youtube.errors import StageHalted
from tasks.youtube.messages import YTDLP_KEY

DATASET = "frame_features"


# Captions are optional: before the captions stage has run, the probe's keep flag decides.
INPUTS = (ShardInput("videos", "search_videos"), ShardInput("captions", "fetch_captions", required=False))


def features_own_hash(cfg: ExtractFeaturesConfig) -> str:
    """Our output-changing fields (the runner chains the videos and captions shards' content to it)."""
    return cfg.data_hash()


def kept_videos(root: DataRoot, shard: int) -> list[dict[str, Any]]:
    """Video id and URL of every video the captions stage kept (or the videos stage, before captions)."""
    videos = read_shard(root, "videos", shard)
    if videos is None:
        return []
    keep = read_shard(root, "captions", shard) if read_marker(root, "captions", shard) else videos
    kept_ids = (
        set(keep.filter(pc.field("keep")).column("video_id").to_pylist()) if keep is not None else set()
    )
    rows = videos.select(["video_id", "url"]).to_pylist()
    return [r for r in rows if r["video_id"] in kept_ids]


def _work_dir(root: DataRoot, shard: int, own_hash: str) -> str:
    # Our own config hash in the name: parts from an older config are never mixed into a new shard,
    # while a change upstream (a recovered video) keeps the parts of the videos already done.
    return shard_work_dir(root, DATASET, shard, own_hash)


# Not a halt, and not weights that are missing or not weights: a retry would load the same file again.
_worth_retrying = retry_unless(StageHalted, WeightsMissing, NotACheckpoint)


@task(name="frame_features_shard", retries=1, retry_delay_seconds=30, retry_condition_fn=_worth_retrying)
def features_shard(
    root_url: str, shard: int, cfg: ExtractFeaturesConfig, access: YoutubeAccess
) -> dict[str, Any]:
    """Extract one shard; resumable per video (finished videos are parked as parts until the shard is done)."""
    root = DataRoot.from_any(root_url)
    own = features_own_hash(cfg)
    said: dict[str, int] = {}
    work = _work_dir(root, shard, own)
    try:
        with gpu_slot(str(pick_device(cfg.device)), cuda_device_ids) as device:
            # On CUDA: the GPU of this machine held for the shard (device is run-only: the hash is the same).
            run_cfg = cfg.model_copy(update={"device": device}) if device.startswith("cuda") else cfg
            job = ShardJob(
                DATASET, shard, own, lambda previous: _compute(root, shard, run_cfg, access, own, previous, said),
                inputs=INPUTS, reusable=_finished_videos,
                sort_by=[("video_id", "ascending"), ("model", "ascending"), ("idx", "ascending")],
                # Parked parts outlive a shard with row errors, so the retry only redoes the failed videos;
                # those of another config (the folders of the shard's older hashes) are never read again.
                config=cfg.data_fields(), work_folders=True,
            )  # fmt: skip
            return {**run_job(root, job), YTDLP_KEY: said}
    except BaseException:
        _drop_if_empty(root, work)  # failed before any video was parked (encoders that would not load)
        raise


def _drop_if_empty(root: DataRoot, work: str) -> None:
    """Remove the shard's parts folder, and the stage's folder above it, when they hold nothing."""
    for path in (work, work.rsplit("/", 1)[0]):
        if root.exists(path) and not root.fs.ls(path, detail=False):
            root.fs.rmdir(path)


def _finished_videos(table: pa.Table) -> pa.Table:
    """Rows of videos done for good (ok or permanently failed); errored ones are retried."""
    return table.filter(pc.not_equal(table.column("status"), "error"))


def _compute(
    root: DataRoot,
    shard: int,
    cfg: ExtractFeaturesConfig,
    access: YoutubeAccess,
    own: str,
    previous: pa.Table | None,
    said: dict[str, int],
) -> ShardOutput:
    log = get_run_logger()
    videos = kept_videos(root, shard)
    for path in remove_killed_copies(track_dir(root), [v["video_id"] for v in videos]):
        log.info("%s shard %d: removed leftover %s", DATASET, shard, path.name)
    work = _work_dir(root, shard, own)
    root.makedirs(work)
    reused = _rows_by_video(previous)
    parts = set(reused) | {p.rsplit("/", 1)[1][: -len(".parquet")] for p in _part_files(root, work)}
    todo = [v for v in videos if v["video_id"] not in parts]
    log.info(
        "%s shard %d: %d kept videos, %d done earlier, %d to do",
        DATASET,
        shard,
        len(videos),
        len(parts & {v["video_id"] for v in videos}),
        len(todo),
    )
    errors: list[pa.Table] = []
    decoders: Counter[str] = Counter()  # videos extracted per decoder that really ran ("cpu", "cuda", ...)
    computed_in: dict[str, str] = {}  # video -> compute precision it was extracted in ("auto" resolved here)
    fallbacks: list[str] = []
    if todo:
        with leased_extractor(cfg, root) as (extractor, loaded, rt):
            if any(loaded.random.values()):
                log.warning(
                    "%s: RANDOM WEIGHTS (BatchNorm-calibrated) for %s: rows say random_weights=true",
                    DATASET,
                    ", ".join(m for m, r in loaded.random.items() if r),
                )
            log.info("%s: running on %s in %s", DATASET, rt.device, rt.precision)
            failed_downloads: list[VideoResult] = []
            paths: dict[str, Path] = {}
            halted: list[StageHalted | ItemInterrupted] = []
            client = YoutubeClient(access)  # secrets read here, in the task's thread
            guard = _crash_guard(root, work, extractor, todo)
            jobs = download_jobs(
                todo, cfg, root, client, failed_downloads, paths, halted, extractor.settings.decoder, guard
            )
            started, done = time.perf_counter(), 0
            for decoded in extractor.run(jobs):
                if decoded.status == INTERRUPTED:
                    # Ctrl-C or SIGTERM stopped its decoder: no attempt is counted and no row written. The
                    # shard stops unwritten (the videos finished so far are parked): the rerun decodes it
                    # afresh.
                    raise ItemInterrupted(f"{decoded.video_id}: {decoded.error}")
                result = retry_corrupt(root, work, decoded, paths.get(decoded.video_id))
                _finish(root, work, result, cfg, loaded.random, paths, errors, guard, rt.precision)
                if result.status == "ok":
                    decoders[result.decoder] += 1
                    computed_in[result.video_id] = rt.precision
                    fallbacks += [result.decoder_fallback] if result.decoder_fallback else []
                done += 1
                advance(f"{DATASET} shard {shard}: videos", done, len(todo))
                # Progress on long work: one line per video with the pace, so a crawl's ETA is visible.
                elapsed = time.perf_counter() - started
                log.info(
                    "%s shard %d: %d/%d videos (%s %s), %.1f s/video",
                    DATASET,
                    shard,
                    done,
                    len(todo),
                    result.video_id,
                    result.status,
                    elapsed / done,
                )
                if interrupt_seen():
                    # Ctrl-C or SIGTERM with no child of ours cut (an in-process decoder, a signal to this
                    # process alone, or between two videos): the video in hand is parked, the next one not
                    # begun; a shard can be an hour of video.
                    raise ItemInterrupted(
                        f"{DATASET} shard {shard}: {stop_name()} after {done} of {len(todo)} videos"
                    )
            for result in failed_downloads:
                _finish(root, work, result, cfg, loaded.random, paths, errors, guard)
            hwaccel = extractor.settings.hwaccel
            if hwaccel and fallbacks:
                log.warning(
                    "%s shard %d: the %s decoder gave up on %d of %d videos, decoded on the CPU instead (%s)",
                    DATASET, shard, hwaccel, len(fallbacks), sum(decoders.values()), fallbacks[0],
                )  # fmt: skip
            said.update(client.counts)
            if halted:
                # No shard is written: the videos finished before the halt (or a stop signal) are parked as
                # parts, so a rerun resumes after them instead of asking the site again.
                raise halted[0]
    tables, from_parts = [], {}
    for path in _part_files(root, work):
        part, precision = untag_part(_read_part(root, path))
        tables.append(part)
        if precision is not None and part.num_rows:
            from_parts[part.column("video_id")[0].as_py()] = precision
    tables += [t for vid, t in sorted(reused.items()) if not root.exists(f"{work}/{vid}.parquet")]
    kept = {v["video_id"] for v in videos}
    tables = [t for t in tables if t.num_rows and t.column("video_id")[0].as_py() in kept] + errors
    table = pa.concat_tables(tables) if tables else result_table(VideoResult("", "ok"), (), {}).slice(0, 0)
    previous_marker = read_marker(root, DATASET, shard) if reused else None
    before = _videos_with_status(previous, "ok") if previous is not None else set()
    precision_of = video_precisions(
        _videos_with_status(table, "ok"),
        computed_in,
        from_parts,
        marker_precisions(previous_marker.extra if previous_marker else None, before),
    )
    n_err = len(errors)
    return ShardOutput(
        table=table,
        rows_in=len(videos),
        drops=cap_drops(table),
        errors=n_err,
        extra={
            YTDLP_KEY: said,
            "videos_failed": len(_videos_with_status(table, "failed")),
            "videos_error": n_err,
            "videos_extracted": len(todo),
            "videos_decoded_on": dict(decoders),
            "videos_computed_in": dict(Counter(computed_in.values())),
            MARKER_KEY: precision_of,
            "videos_reused": len(kept - {v["video_id"] for v in todo}),
        },
    )


def _crash_guard(
    root: DataRoot, work: str, extractor: Extractor, todo: list[dict[str, Any]]
) -> DecodeGuard | None:
    """The guard against files that crash the decoder, where decoding runs in this process (PyAV, with the
    frames on the CPU or kept on the GPU); the command line's decoder and pyav-child crash alone, as a
    failed exit."""
    s = extractor.settings
    if s.decoder not in IN_PROCESS:
        return None
    in_flight = InFlight(root, work)
    in_flight.keep_only({v["video_id"] for v in todo})
    if in_flight.suspects:
        get_run_logger().warning(
            "%s: %d videos were with the decoder when a run died, or hung it: each is decoded first in a "
            "child process; one that crashes it gets a failed row, one that hangs it an error row",
            DATASET, len(in_flight.suspects),
        )  # fmt: skip
    specs = extractor.specs

    def request(path: str) -> CheckRequest:
        return CheckRequest(path, specs, s.timeout_base_s, s.timeout_per_video_s, s.hwaccel)

    return DecodeGuard(in_flight, request)


def _videos_with_status(table: pa.Table, status: str) -> set[str]:
    """The videos whose rows have `status` ("ok": the videos with features)."""
    return set(table.filter(pc.equal(table.column("status"), status)).column("video_id").to_pylist())


def _part_files(root: DataRoot, work: str) -> list[str]:
    """Parked per-video parts, sorted; temp files of an interrupted write are not parts."""
    return sorted(p for p in root.fs.glob(f"{work}/*.parquet") if not is_temp_name(p))


def _rows_by_video(previous: pa.Table | None) -> dict[str, pa.Table]:
    """The earlier shard's reusable rows, one table per video."""
    if previous is None or previous.num_rows == 0:
        return {}
    ids = previous.column("video_id")
    return {vid: previous.filter(pc.equal(ids, vid)) for vid in sorted(set(ids.to_pylist()))}


def _read_part(root: DataRoot, path: str) -> pa.Table:
    return read_parquet_file(root, path)


def _finish(
    root: DataRoot,
    work: str,
    result: VideoResult,
    cfg: ExtractFeaturesConfig,
    random: dict[str, bool],
    paths: dict[str, Path],
    errors: list[pa.Table],
    guard: DecodeGuard | None = None,
    precision: str | None = None,
) -> None:
    """Park a finished (ok or permanently failed) video as a part, its features tagged with the precision
    they were computed in; keep retryable errors for this run only.
    The video then leaves the crash guard's in-flight list, unless its decode was abandoned past its budget
    (its retries are decoded in a child first)."""
    table = result_table(result, cfg.models, random)
    if result.status == "error":
        errors.append(table)
    else:
        if result.status == "ok" and precision is not None:
            table = tag_part(table, precision)
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        atomic_write_bytes(root, f"{work}/{result.video_id}.parquet", buffer.getvalue())
    if guard is not None:
        guard.finish(result.video_id, result.abandoned)
    path = paths.pop(result.video_id, None)
    if path is not None and path.exists():
        keep_track(path, track_dir(root), result.video_id)  # the audio_features stage reads it later
    if path is not None and not cfg.keep_videos and result.status != "error":
        path.unlink(missing_ok=True)
