"""Frame features of benchmark videos through the project's extractor, cached as `benchmark_features`.

Same extractor, same config hash and same shard contract as the frame-features stage: a benchmark's
videos are cut into chunks (sorted ids); each chunk is one shard whose number and fingerprint come from
its video ids and file sizes, so evaluating twice finds every shard marked and extracts nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from storage.layout import DataRoot
from storage.schemas import get_schema
from storage.shards import list_markers, read_parquet_file, read_shard
from tasks.common import shard_hash
from tasks.features.config import ExtractFeaturesConfig
from tasks.features.extractor import VideoJob
from tasks.features.pipeline import leased_extractor, release_encoders
from tasks.features.recorded import DATA_FIELDS, VECTOR_FIELDS
from tasks.features.rows import result_table
from tasks.features.stage import features_own_hash
from tasks.shard_runner import ShardJob, ShardOutput, run_job
from tasks.train.pooling import VideoFeatures, features_by_video

log = logging.getLogger(__name__)

DATASET = "benchmark_features"
CHUNK_VIDEOS = 64
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv", ".3gp")


def find_videos(video_dir: Path, ids: Iterable[str]) -> tuple[dict[str, Path], list[str]]:
    """Files named `<id>.<video suffix>` anywhere under `video_dir` (YouCook2 nests them by subset and
    recipe, MSR-VTT by split); returns (id -> path, ids without a file)."""
    wanted = set(ids)
    found: dict[str, Path] = {}
    for path in sorted(video_dir.rglob("*")):
        if path.suffix.lower() in VIDEO_SUFFIXES and path.stem in wanted and path.stem not in found:
            found[path.stem] = path
    return found, sorted(wanted - set(found))


def shard_number(video_ids: list[str]) -> int:
    """A chunk's shard: a number from its sorted video ids, whichever benchmark lists them (the demo's
    CrossTask val and YouCook2 validation videos are the same, so they share one extraction)."""
    digest = hashlib.sha1("|".join(video_ids).encode()).hexdigest()
    return 10_000_000 + int(digest[:8], 16) % 90_000_000


@dataclass
class BenchmarkFeatures:
    """Per-video feature rows of the videos that extracted, plus what happened."""

    videos: dict[str, VideoFeatures]
    failed: dict[str, str] = field(default_factory=dict)  # video id -> error
    shards: int = 0
    shards_cached: int = 0
    extracted: int = 0


def _chunk_job(
    root: DataRoot, shard: int, chunk: Mapping[str, Path], cfg: ExtractFeaturesConfig, reuse: bool
) -> ShardJob:
    listing = [f"{vid}:{path.stat().st_size}" for vid, path in sorted(chunk.items())]

    def compute(_previous: pa.Table | None) -> ShardOutput:
        tables = list(root_features(root, set(chunk), cfg).values()) if reuse else []
        todo = sorted(set(chunk) - {t.column("video_id")[0].as_py() for t in tables})
        if tables:
            log.info("%s shard %d: %d videos reused from frame_features", DATASET, shard, len(tables))
        if todo:
            with leased_extractor(cfg, root) as (extractor, loaded, rt):
                log.info("%s shard %d: extracting %d videos on %s", DATASET, shard, len(todo), rt.device)
                jobs = (VideoJob(vid, str(chunk[vid])) for vid in todo)
                tables += [result_table(r, cfg.models, loaded.random) for r in extractor.run(jobs)]
        table = pa.concat_tables(tables)
        errors = len(
            set(table.filter(pc.equal(table.column("status"), "error")).column("video_id").to_pylist())
        )
        return ShardOutput(table=table, rows_in=len(chunk), errors=errors, extra={"videos": len(chunk)})

    return ShardJob(
        DATASET, shard, shard_hash(features_own_hash(cfg), *listing), compute,
        sort_by=[("video_id", "ascending"), ("model", "ascending"), ("idx", "ascending")],
        config={**cfg.model_dump(mode="json", include=set(DATA_FIELDS)), "videos": len(chunk)},
    )  # fmt: skip


def benchmark_features(
    root: DataRoot,
    benchmark: str,
    videos: Mapping[str, Path],
    cfg: ExtractFeaturesConfig,
    progress: Callable[[str], None] | None = None,
    reuse_root_features: bool = False,
) -> BenchmarkFeatures:
    """Extract (or reuse) features of every given video; returns their rows grouped per video.

    `reuse_root_features`: videos that are also in the data root's `frame_features`, made with the
    same config, take those rows instead of being decoded again (the demo's held-out videos are).
    """
    try:
        return _extract_chunks(root, benchmark, videos, cfg, progress, reuse_root_features)
    finally:
        release_encoders()  # the encoders' memory goes back before evaluation goes on


def _extract_chunks(
    root: DataRoot,
    benchmark: str,
    videos: Mapping[str, Path],
    cfg: ExtractFeaturesConfig,
    progress: Callable[[str], None] | None,
    reuse_root_features: bool,
) -> BenchmarkFeatures:
    ids = sorted(videos)
    out = BenchmarkFeatures({})
    for start in range(0, len(ids), CHUNK_VIDEOS):
        chunk = {vid: videos[vid] for vid in ids[start : start + CHUNK_VIDEOS]}
        shard = shard_number(list(chunk))
        manifest = run_job(root, _chunk_job(root, shard, chunk, cfg, reuse_root_features))
        out.shards += 1
        out.shards_cached += int(manifest["cached"])
        if not manifest["cached"]:
            out.extracted += len(chunk)
        if progress is not None:
            done = min(start + CHUNK_VIDEOS, len(ids))
            progress(
                f"{benchmark} features: {done}/{len(ids)} videos ({'cached' if manifest['cached'] else 'new shard'})"
            )
        table = read_shard(root, DATASET, shard)
        if table is None:  # pragma: no cover - run_job just wrote or verified it
            raise FileNotFoundError(f"{DATASET} shard {shard} vanished")
        out.videos.update(features_by_video(table, cfg.models))
        bad = table.filter(pc.not_equal(table.column("status"), "ok"))
        for vid, err in zip(bad.column("video_id").to_pylist(), bad.column("error").to_pylist(), strict=True):
            out.failed.setdefault(vid, err or "failed")
    return out


def _holds_ok_rows(root: DataRoot, shard: int, video_ids: set[str]) -> bool:
    """Whether `frame_features` shard k has a finished (status ok) row of one of these videos, read from its
    id and status columns alone. root_features runs once per chunk of 64 benchmark videos and read every
    matching shard whole, vectors included: the whole dataset again for each chunk, where a benchmark's
    videos are in a few shards (the demo's) or in none (YouCook2's)."""
    path = root.shard_path("frame_features", get_schema("frame_features").version, shard)
    if not video_ids or not root.exists(path):
        return False
    table = read_parquet_file(root, path, columns=["video_id", "status"])
    wanted = pc.is_in(table.column("video_id"), pa.array(sorted(video_ids), pa.string()))
    return bool(pc.any(pc.and_(wanted, pc.equal(table.column("status"), "ok"))).as_py())


def root_features(root: DataRoot, video_ids: set[str], cfg: ExtractFeaturesConfig) -> dict[str, pa.Table]:
    """Finished `frame_features` rows of these videos from shards whose marker records the same
    data-deciding config (weights included); video id -> its rows. Shards without a recorded config
    are never trusted."""
    want = cfg.model_dump(mode="json", include=set(VECTOR_FIELDS))
    found: dict[str, pa.Table] = {}
    for marker in list_markers(root, "frame_features"):
        if not marker.config or any(marker.config.get(k) != v for k, v in want.items()):
            continue
        if not _holds_ok_rows(root, marker.shard, video_ids - set(found)):
            continue
        table = read_shard(root, "frame_features", marker.shard)
        if table is None:
            continue
        table = table.filter(pc.is_in(table.column("video_id"), pa.array(sorted(video_ids - set(found)))))
        ok = set(table.filter(pc.equal(table.column("status"), "ok")).column("video_id").to_pylist())
        for vid in sorted(ok):
            found[vid] = table.filter(pc.equal(table.column("video_id"), vid))
    return found
