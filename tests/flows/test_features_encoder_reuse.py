"""Shards run by one process share their prepared encoders: loaded, packed (compiled on CUDA) once, with the
same rows as encoders of their own; the flow lets them go when it ends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import tasks.features.pipeline as features_pipeline
from flows.extract_features import extract_features
from storage.layout import DataRoot
from storage.schemas import get_schema
from storage.shards import read_shard, write_shard
from tasks.features.config import ExtractFeaturesConfig
from tasks.features.extractor import VideoJob
from tasks.features.pipeline import ENCODERS, PreparedEncoders, build_extractor
from tests.flows.downloads import root_with_downloads
from tests.tasks.features.features_media import encode_frames, index_frames

CFG = ExtractFeaturesConfig(
    short_side_2d=32,
    size_3d=32,
    batch_2d=4,
    batch_3d=4,
    decode_workers=1,
    random_weights=True,
    keep_videos=True,
)
VIDEOS = {0: "firstvideo1", 1: "secondvide2"}


@pytest.fixture()
def root(tmp_path: Path) -> DataRoot:
    root, videos = root_with_downloads(tmp_path)
    schema = get_schema("videos").schema
    for shard, vid in VIDEOS.items():
        encode_frames(videos / f"{vid}.mp4", index_frames(40 + 10 * shard), "20")
        row = {"video_id": vid, "url": None, "keep": True, "status": "ok", "crawl_id": "c0"}
        table = pa.Table.from_pylist([{f.name: row.get(f.name) for f in schema}], schema=schema)
        write_shard(root, "videos", shard, table, config_hash="v-hash", code_version="t", rows_in=1)
    return root


def test_shards_of_one_run_share_encoders_with_the_same_rows(
    root: DataRoot, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepared: list[PreparedEncoders] = []
    real = features_pipeline.prepare_encoders

    def counting(cfg: ExtractFeaturesConfig, at: DataRoot) -> PreparedEncoders:
        prepared.append(real(cfg, at))
        return prepared[-1]

    monkeypatch.setattr(features_pipeline, "prepare_encoders", counting)
    summary = extract_features(CFG, root.url)
    assert summary["shards"] == 2 and summary["shards_cached"] == 0
    assert len(prepared) == 1, "each shard prepared its own encoders"
    assert ENCODERS.idle() == 0, "the flow kept the encoders after it ended"

    # Encoders of its own (as every shard had before) give the same bits for the last shard's video.
    extractor, loaded, _ = build_extractor(CFG, root)
    path = root.path("_work", "videos", f"{VIDEOS[1]}.mp4")
    [fresh] = list(extractor.run([VideoJob(VIDEOS[1], path)]))
    table = read_shard(root, "frame_features", 1)
    assert table is not None
    for model, rows in fresh.rows.items():
        got = table.filter(pc.equal(table.column("model"), model)).sort_by("idx")
        stored = np.array(got.column("vector").to_pylist(), np.float32)
        assert stored.shape == rows.vectors.shape
        np.testing.assert_array_equal(stored, rows.vectors.astype(np.float16))  # rows store float16
