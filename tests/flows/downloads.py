"""A data root with a downloads folder, as an earlier run leaves it: stages resume from its files offline."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from storage.layout import DataRoot


def root_with_downloads(tmp_path: Path) -> tuple[DataRoot, Path]:
    """A fresh data root under `tmp_path` and its (empty) downloaded-videos folder; skips without ffmpeg."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed (setup installs it)")
    root = DataRoot.from_any(tmp_path / "data")
    videos = Path(root.path("_work", "videos"))
    videos.mkdir(parents=True)
    return root, videos


def root_with_downloaded_videos(tmp_path: Path, seconds: dict[str, float]) -> DataRoot:
    """A data root whose `videos` shard 0 keeps the videos of `seconds` (id -> length), each downloaded
    already as a 96x64 testsrc2 clip, in that order: the features stage decodes them offline."""
    import pyarrow as pa

    from storage.schemas import get_schema
    from storage.shards import write_shard
    from tests.tasks.features.features_media import make_testsrc

    root, videos = root_with_downloads(tmp_path)
    for video_id, length in seconds.items():
        make_testsrc(videos / f"{video_id}.mp4", "96x64", "24", length)
    schema = get_schema("videos").schema
    rows = [{"video_id": v, "keep": True, "status": "ok", "crawl_id": "c0"} for v in seconds]
    table = pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in rows], schema=schema)
    write_shard(root, "videos", 0, table, config_hash="v-hash", code_version="t", rows_in=len(rows))
    return root
