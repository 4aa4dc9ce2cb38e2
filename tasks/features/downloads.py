"""The download part of the frame_features stage: kept videos -> local files, through the one YouTube
client, with the media caps (size before any media request, duration as ffprobe reads the file)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from storage.layout import DataRoot
from storage.private_temp import private_temp_dir
from tasks.features.config import ExtractFeaturesConfig
from tasks.features.crash_guard import DecodeGuard
from tasks.features.decode import DecodeError, DecodeTimeout, probe_with
from tasks.features.extractor import VideoJob, VideoResult
from tasks.interrupts import ItemInterrupted
from tasks.search.info_store import load_reusable_info
from tasks.youtube.client import MediaCapExceeded, VideoError, YoutubeClient
from tasks.youtube.errors import ErrorKind, StageHalted
from tasks.youtube.ids import InvalidVideoId, check_video_id
from tasks.youtube.video_download import TOO_LARGE, TOO_LONG, DiskSpaceLow, DownloadSettings


def video_dir(root: DataRoot) -> Path:
    """Downloads live under the data root when it is local, else in a temp folder of this user's alone
    (a download found there is reused: in a folder others can write, it could be anyone's file)."""
    if root.is_local:
        return Path(root.path("_work", "videos"))
    return private_temp_dir("howto-videos")


def cap_drops(table: pa.Table) -> dict[str, int]:
    """Videos failed for a media cap, by reason (one count per video, not per model row)."""
    failed = table.filter(pc.equal(table.column("status"), "failed")).select(["video_id", "error"])
    by_reason: dict[str, set[str]] = {}
    for row in failed.to_pylist():
        reason = (row["error"] or "").partition(":")[0]
        if reason in (TOO_LARGE, TOO_LONG):
            by_reason.setdefault(reason, set()).add(row["video_id"])
    return {reason: len(ids) for reason, ids in sorted(by_reason.items())}


def download_jobs(
    todo: list[dict[str, Any]],
    cfg: ExtractFeaturesConfig,
    root: DataRoot,
    client: YoutubeClient,
    failed: list[VideoResult],
    paths: dict[str, Path],
    halted: list[StageHalted | ItemInterrupted],
    decoder: str = "ffmpeg",
    guard: DecodeGuard | None = None,
) -> Iterator[VideoJob]:
    """Download lazily (the extractor pulls jobs while it computes); per-video failures become result
    rows, a video past a media cap a failed row (too_large, too_long), one whose id is no video id (a
    crafted root) an error row, and a halt (bot check, 429s past the breaker) or a stop signal (Ctrl-C,
    SIGTERM) cutting a download or probe stops the downloads and is handed back in `halted` (the cut
    video gets no row: the rerun tries it afresh). With a `guard`
    (in-process decoding), each file is admitted before anything decodes it, its duration check included; a
    file that crashed the decoder in a child becomes a failed row, one that hung it an error row (see
    crash_guard.py)."""
    max_bytes = int(cfg.max_download_mb * 1e6) if cfg.max_download_mb is not None else None
    settings = DownloadSettings(video_dir(root), min_free_gb=cfg.min_free_gb, max_bytes=max_bytes)
    lock = threading.Lock()
    with client:
        for i, video in enumerate(todo):
            vid = video["video_id"]
            try:
                check_video_id(vid)  # before the id names any file or request (a crafted `videos` row)
                path = _download(root, client, vid, video.get("url") or client.video_url(vid), settings)
                if guard is not None and (verdict := guard.admit(vid, str(path))):
                    with lock:
                        failed.append(
                            VideoResult(vid, verdict.status, verdict.error, abandoned=verdict.hangs)
                        )
                    paths[vid] = path  # the stage removes the file with a failed row, keeps it with an error
                    continue
                _check_duration(path, cfg, decoder)
            except MediaCapExceeded as exc:
                with lock:
                    failed.append(VideoResult(vid, "failed", str(exc)))
                continue
            except InvalidVideoId as exc:
                # An error row, never a failed one: failed rows are parked as parts named after the id.
                with lock:
                    failed.append(VideoResult(vid, "error", str(exc)))
                continue
            except VideoError as exc:
                status = "failed" if exc.kind == ErrorKind.UNAVAILABLE else "error"
                with lock:
                    failed.append(VideoResult(vid, status, f"download: {exc}"))
                continue
            except DiskSpaceLow as exc:
                with lock:
                    failed.extend(VideoResult(v["video_id"], "error", str(exc)) for v in todo[i:])
                return
            except StageHalted as exc:
                halted.append(exc)  # asking again for each remaining video would only hammer on
                return
            except ItemInterrupted as exc:  # not raised here: this runs in the extractor's feeder thread
                halted.append(exc)
                return
            paths[vid] = path
            yield VideoJob(vid, str(path))


def _download(root: DataRoot, client: YoutubeClient, vid: str, url: str, settings: DownloadSettings) -> Path:
    """Download from the probe's kept info when it is fresh and usable (only the media is requested), else
    from the page; kept info whose media URLs no longer work is replaced by a fresh extraction."""
    info = load_reusable_info(root, vid, client.access.info_reuse_max_age_s)
    if info is not None:
        try:
            return client.video(vid, url, settings, info)
        except VideoError as exc:
            if exc.kind is not ErrorKind.TRANSIENT:
                raise
    return client.video(vid, url, settings)


def _check_duration(path: Path, cfg: ExtractFeaturesConfig, decoder: str = "ffmpeg") -> None:
    """Refuse media longer than the cap, as the extractor's decoder (ffprobe, or PyAV) reads the file (the
    metadata may have said less); a file it cannot read is left to the extractor, which records it as
    corrupt."""
    if cfg.max_media_duration_s is None:
        return
    try:
        duration_s = probe_with(decoder, str(path)).duration_s
    except (DecodeError, DecodeTimeout):
        return
    if duration_s > cfg.max_media_duration_s:
        if not cfg.keep_videos:
            path.unlink(missing_ok=True)
        raise MediaCapExceeded(TOO_LONG, f"{duration_s:.0f} s > {cfg.max_media_duration_s:.0f} s")
