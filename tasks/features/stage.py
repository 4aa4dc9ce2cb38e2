"""The frame_features shard task: download kept videos of `videos` shard k, extract, write shard k."""

from __future__ import annotations

import contextlib
import io
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from prefect import get_run_logger, task

from storage.layout import DataRoot
from storage.shards import read_marker, read_shard
from tasks.common import code_version, config_hash, shard_hash
from tasks.features.config import SPEED_FIELDS, ExtractFeaturesConfig
from tasks.features.extractor import VideoJob, VideoResult
from tasks.features.pipeline import build_extractor
from tasks.features.rows import result_table
from tasks.shard_runner import ShardOutput, run_shard
from tasks.youtube.client import VideoError
from tasks.youtube.errors import ErrorKind
from tasks.youtube.video_download import DiskSpaceLow, DownloadSettings, download_video

DATASET = "frame_features"


def upstream(root: DataRoot, shard: int) -> tuple[str, list[str]]:
    """(the dataset whose keep flag decides, its + the videos marker's config hashes) for shard k."""
    videos = read_marker(root, "videos", shard)
    if videos is None:
        raise FileNotFoundError(f"videos shard {shard} has no marker: run the search stage first")
    captions = read_marker(root, "captions", shard)
    if captions is not None:
        return "captions", [videos.config_hash, captions.config_hash]
    return "videos", [videos.config_hash]


def features_shard_hash(root: DataRoot, shard: int, cfg: ExtractFeaturesConfig) -> str:
    _, hashes = upstream(root, shard)
    return shard_hash(config_hash(cfg, exclude=SPEED_FIELDS), *hashes)


def kept_videos(root: DataRoot, shard: int) -> list[dict[str, Any]]:
    """Video id and URL of every video the captions stage kept (or the videos stage, before captions)."""
    source, _ = upstream(root, shard)
    videos = read_shard(root, "videos", shard)
    if videos is None:
        return []
    keep = read_shard(root, source, shard) if source == "captions" else videos
    kept_ids = (
        set(keep.filter(pc.field("keep")).column("video_id").to_pylist()) if keep is not None else set()
    )
    rows = videos.select(["video_id", "url"]).to_pylist()
    return [r for r in rows if r["video_id"] in kept_ids]


def _work_dir(root: DataRoot, shard: int, shard_hash_: str) -> str:
    # The hash in the name: parts from an older config are never mixed into a new shard.
    return root.path("_work", DATASET, f"part-{shard:05d}-{shard_hash_}")


def _video_dir(root: DataRoot) -> Path:
    """Downloads live under the data root when it is local, else in a local temp folder."""
    if root.is_local:
        return Path(root.path("_work", "videos"))
    return Path(tempfile.gettempdir()) / "howto-videos"


@task(name="frame_features_shard", retries=1, retry_delay_seconds=30)
def features_shard(root_url: str, shard: int, cfg: ExtractFeaturesConfig) -> dict[str, Any]:
    """Extract one shard; resumable per video (finished videos are parked as parts until the shard is done)."""
    root = DataRoot.from_any(root_url)
    h = features_shard_hash(root, shard, cfg)
    with _gpu_slot(cfg):
        manifest = run_shard(
            root,
            DATASET,
            shard,
            h,
            code_version(),
            lambda: _compute(root, shard, cfg, h),
            sort_by=[("video_id", "ascending"), ("model", "ascending"), ("idx", "ascending")],
        )
    work = _work_dir(root, shard, h)
    # Parked parts outlive a shard with row errors, so the retry only redoes the failed videos.
    if not manifest["errors"] and root.exists(work):
        root.fs.rm(work, recursive=True)
    return manifest


@contextlib.contextmanager
def _gpu_slot(cfg: ExtractFeaturesConfig) -> Iterator[None]:
    """Hold one slot of Prefect's global "gpu" concurrency limit while a CUDA shard runs."""
    import torch

    if cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available()):
        from prefect.concurrency.sync import concurrency

        with concurrency("gpu", occupy=1):
            yield
    else:
        yield


def _compute(root: DataRoot, shard: int, cfg: ExtractFeaturesConfig, h: str) -> ShardOutput:
    log = get_run_logger()
    videos = kept_videos(root, shard)
    work = _work_dir(root, shard, h)
    root.makedirs(work)
    parts = {p.rsplit("/", 1)[1][: -len(".parquet")] for p in root.fs.glob(f"{work}/*.parquet")}
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
    if todo:
        extractor, loaded, rt = build_extractor(cfg, root)
        if any(loaded.random.values()):
            log.warning(
                "%s: RANDOM WEIGHTS (BatchNorm-calibrated) for %s: rows say random_weights=true",
                DATASET,
                ", ".join(m for m, r in loaded.random.items() if r),
            )
        log.info("%s: running on %s in %s", DATASET, rt.device, rt.precision)
        failed_downloads: list[VideoResult] = []
        paths: dict[str, Path] = {}
        jobs = _download_jobs(todo, cfg, root, failed_downloads, paths)
        started, done = time.perf_counter(), 0
        for result in extractor.run(jobs):
            _finish(root, work, result, cfg, loaded.random, paths, errors)
            done += 1
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
        for result in failed_downloads:
            _finish(root, work, result, cfg, loaded.random, paths, errors)
    tables = [_read_part(root, p) for p in sorted(root.fs.glob(f"{work}/*.parquet"))]
    kept = {v["video_id"] for v in videos}
    tables = [t for t in tables if t.num_rows and t.column("video_id")[0].as_py() in kept] + errors
    table = pa.concat_tables(tables) if tables else result_table(VideoResult("", "ok"), (), {}).slice(0, 0)
    n_err = len(errors)
    return ShardOutput(
        table=table,
        rows_in=len(videos),
        errors=n_err,
        extra={"videos_failed": _count_status(table, "failed"), "videos_error": n_err},
    )


def _count_status(table: pa.Table, status: str) -> int:
    rows = table.filter(pc.equal(table.column("status"), status)).column("video_id").to_pylist()
    return len(set(rows))


def _read_part(root: DataRoot, path: str) -> pa.Table:
    with root.open(path, "rb") as handle:
        return pq.read_table(io.BytesIO(handle.read()))


def _finish(
    root: DataRoot,
    work: str,
    result: VideoResult,
    cfg: ExtractFeaturesConfig,
    random: dict[str, bool],
    paths: dict[str, Path],
    errors: list[pa.Table],
) -> None:
    """Park a finished (ok or permanently failed) video as a part; keep retryable errors for this run only."""
    table = result_table(result, cfg.models, random)
    if result.status == "error":
        errors.append(table)
    else:
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        tmp, final = f"{work}/.tmp-{result.video_id}.parquet", f"{work}/{result.video_id}.parquet"
        with root.open(tmp, "wb") as handle:
            handle.write(buffer.getvalue())
        root.fs.mv(tmp, final)
    path = paths.pop(result.video_id, None)
    if path is not None and not cfg.keep_videos and result.status != "error":
        path.unlink(missing_ok=True)


def _download_jobs(
    todo: list[dict[str, Any]],
    cfg: ExtractFeaturesConfig,
    root: DataRoot,
    failed: list[VideoResult],
    paths: dict[str, Path],
) -> Iterator[VideoJob]:
    """Download lazily (the extractor pulls jobs while it computes); failures become result rows."""
    settings = DownloadSettings(_video_dir(root), min_free_gb=cfg.min_free_gb)
    client = cfg.client_settings()
    lock = threading.Lock()
    for i, video in enumerate(todo):
        vid = video["video_id"]
        try:
            path = download_video(vid, video.get("url") or _default_url(vid, cfg), settings, client)
        except VideoError as exc:
            status = "failed" if exc.kind == ErrorKind.UNAVAILABLE else "error"
            with lock:
                failed.append(VideoResult(vid, status, f"download: {exc}"))
            continue
        except DiskSpaceLow as exc:
            with lock:
                failed.extend(VideoResult(v["video_id"], "error", str(exc)) for v in todo[i:])
            return
        paths[vid] = path
        yield VideoJob(vid, str(path))


def _default_url(video_id: str, cfg: ExtractFeaturesConfig) -> str:
    if cfg.demo_url:
        from tasks.youtube import demo_extractors

        return str(demo_extractors.video_url(cfg.demo_url, video_id))
    return f"https://www.youtube.com/watch?v={video_id}"
