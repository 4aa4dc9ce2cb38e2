"""The audio_features shard task: each kept video of `videos` shard k -> per-second audio vectors, shard k."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from prefect import get_run_logger, task

from models.encoders import cuda_device_ids
from storage.layout import DataRoot
from tasks.audio.config import ExtractAudioConfig
from tasks.audio.decode import CORRUPT, NO_AUDIO
from tasks.audio.extract import AudioResult, extract_audio
from tasks.audio.rows import audio_table, empty_audio_table
from tasks.audio.sources import fetch_audio, kept_outcome, track_dir
from tasks.audio.weights import load_audio_encoder
from tasks.features.downloads import video_dir
from tasks.features.stage import kept_videos
from tasks.gpu_limit import gpu_slot
from tasks.shard_runner import ShardInput, ShardJob, ShardOutput, run_job
from tasks.youtube.access import YoutubeAccess
from tasks.youtube.client import MediaCapExceeded, VideoError, YoutubeClient
from tasks.youtube.errors import ErrorKind
from tasks.youtube.ids import InvalidVideoId, check_video_id
from tasks.youtube.messages import YTDLP_KEY
from tasks.youtube.retry import not_halted
from tasks.youtube.video_download import DiskSpaceLow, existing_download

DATASET = "audio_features"
# The features stage keeps each download's track beside the data: it runs first.
INPUTS = (
    ShardInput("videos", "search_videos"),
    ShardInput("captions", "fetch_captions", required=False),
    ShardInput("frame_features", "extract_features"),
)


@task(name="audio_features_shard", retries=1, retry_delay_seconds=30, retry_condition_fn=not_halted)
def audio_shard(root_url: str, shard: int, cfg: ExtractAudioConfig, access: YoutubeAccess) -> dict[str, Any]:
    """Extract one shard's audio vectors; videos done for good in an earlier run are kept, not redone."""
    root = DataRoot.from_any(root_url)
    said: dict[str, int] = {}
    # On CUDA, like the features stage: one GPU of this machine held alone and a slot of the `gpu` limit,
    # so the audio shards of a gpu-pool run never land on a card another run holds.
    with gpu_slot(cfg.device, cuda_device_ids) as device:
        run_cfg = cfg.model_copy(update={"device": device})  # run-only: the shard's hash is the same
        job = ShardJob(
            DATASET, shard, cfg.data_hash(),
            lambda previous: _compute(root, shard, run_cfg, access, previous, said),
            inputs=INPUTS, reusable=lambda t: t.filter(pc.not_equal(t.column("status"), "error")),
            sort_by=[("video_id", "ascending"), ("model", "ascending"), ("idx", "ascending")],
            config=cfg.data_fields(),
        )  # fmt: skip
        return {**run_job(root, job), YTDLP_KEY: said}


def _compute(
    root: DataRoot,
    shard: int,
    cfg: ExtractAudioConfig,
    access: YoutubeAccess,
    previous: pa.Table | None,
    said: dict[str, int],
) -> ShardOutput:
    log = get_run_logger()
    videos = kept_videos(root, shard)
    kept = {v["video_id"] for v in videos}
    reused = (
        previous.filter(pc.is_in(previous.column("video_id"), pa.array(sorted(kept), pa.string())))
        if previous is not None
        else None
    )
    done = set(reused.column("video_id").to_pylist()) if reused is not None else set()
    todo = [v for v in videos if v["video_id"] not in done]
    log.info(
        "%s shard %d: %d kept videos, %d done earlier, %d to do",
        DATASET,
        shard,
        len(videos),
        len(done),
        len(todo),
    )
    tables = [reused] if reused is not None and reused.num_rows else []
    seconds, started = 0.0, time.perf_counter()
    if todo:
        encoder, random = load_audio_encoder(cfg)
        encoder = encoder.to(cfg.device)  # the chunks go to cfg.device (extract.encode_chunks): so must it
        if random:
            log.warning(
                "%s: RANDOM WEIGHTS (BatchNorm-calibrated) for cnn14: rows say random_weights=true", DATASET
            )
        results, said_now = audio_results(root, cfg, access, todo, encoder)
        said.update(said_now)
        for result in results:
            seconds += result.seconds
            tables.append(audio_table(result, cfg.encoder, random))
    table = pa.concat_tables(tables) if tables else empty_audio_table()
    wall = time.perf_counter() - started
    statuses = _video_statuses(table)
    errors = sum(1 for s in statuses.values() if s == "error")
    return ShardOutput(
        table=table,
        rows_in=len(videos),
        drops={},
        errors=errors,
        extra={
            YTDLP_KEY: said,
            "audio_videos": {
                s: sum(1 for v in statuses.values() if v == s) for s in sorted(set(statuses.values()))
            },
            "audio_seconds": round(seconds, 1),
            "audio_wall_s": round(wall, 2),
        },
    )


def audio_results(
    root: DataRoot, cfg: ExtractAudioConfig, access: YoutubeAccess, videos: list[dict[str, Any]], encoder: Any
) -> tuple[list[AudioResult], dict[str, int]]:
    """Every video's result in order (a bad file is a status, never an exception) and what yt-dlp said
    when some track had to be fetched; the client is made only for the first fetch."""
    client: YoutubeClient | None = None
    results = []
    try:
        for video in videos:
            result, client = _one(root, cfg, access, video, encoder, client)
            results.append(result)
    finally:
        said = dict(client.counts) if client is not None else {}
        if client is not None:
            client.close()
    return results, said


def _video_statuses(table: pa.Table) -> dict[str, str]:
    return dict(zip(table.column("video_id").to_pylist(), table.column("status").to_pylist(), strict=True))


def _one(
    root: DataRoot,
    cfg: ExtractAudioConfig,
    access: YoutubeAccess,
    video: dict[str, Any],
    encoder: Any,
    client: YoutubeClient | None,
) -> tuple[AudioResult, YoutubeClient | None]:
    """One video's result; the client is made on the first fetch and handed back for the next."""
    vid = video["video_id"]
    try:
        check_video_id(vid)  # before the id names any file or request (a crafted `videos` row)
    except InvalidVideoId as exc:
        return AudioResult(vid, "error", str(exc)), client
    outcome, path, message = kept_outcome(track_dir(root), vid)
    if outcome == "no_audio":
        return AudioResult(vid, NO_AUDIO, "no audio stream in the download"), client
    if outcome == "unreadable":
        return AudioResult(vid, "failed", f"{CORRUPT}: {message}"), client
    fetched: Path | None = None
    if path is None:
        path = existing_download(video_dir(root), vid)  # kept by the features stage (keep_videos)
    if path is None:
        client = client or YoutubeClient(access)
        max_bytes = int(cfg.max_download_mb * 1e6) if cfg.max_download_mb is not None else None
        try:
            fetched = path = fetch_audio(
                client, vid, video.get("url") or client.video_url(vid), track_dir(root),
                max_bytes=max_bytes, min_free_gb=cfg.min_free_gb,
            )  # fmt: skip
        except MediaCapExceeded as exc:
            return AudioResult(vid, "failed", str(exc)), client
        except VideoError as exc:
            status = "failed" if exc.kind == ErrorKind.UNAVAILABLE else "error"
            return AudioResult(vid, status, f"download: {exc}"), client
        except DiskSpaceLow as exc:
            return AudioResult(vid, "error", str(exc)), client
    result = extract_audio(
        vid,
        str(path),
        encoder,
        silence_dbfs=cfg.silence_dbfs,
        timeout_s=cfg.timeout_s,
        batch=cfg.batch_s,
        device=cfg.device,
        kept_track=outcome == "track",  # most videos: no ffprobe for a picture's clock it has not
    )
    if fetched is not None and result.status != "error":
        fetched.unlink(missing_ok=True)
    return result, client
