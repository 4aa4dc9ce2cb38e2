"""Training data from the demo world without the upstream flows: its spoken segments as clips and
features from the real extractor (random weights, calibrated BatchNorm, small frames) on its videos."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from storage.layout import DataRoot
from storage.shards import write_shard
from tasks.demo.world import World
from tasks.features.config import ExtractFeaturesConfig
from tasks.features.extractor import VideoJob
from tasks.features.pipeline import build_extractor
from tasks.features.rows import result_table

SHARDS = 3


def write_demo_root(world: World, out: Path, short_side_2d: int = 64, size_3d: int = 32) -> DataRoot:
    """`clips` (one per spoken segment) and `frame_features` shards for the demo world's usable videos."""
    root = DataRoot.from_any(str(out))
    videos = [v for v in world.usable if v.language == "en" and v.path is not None]
    cfg = ExtractFeaturesConfig(short_side_2d=short_side_2d, size_3d=size_3d, random_weights=True)
    extractor, loaded, _ = build_extractor(cfg, root)
    tables = {
        r.video_id: result_table(r, cfg.models, loaded.random)
        for r in extractor.run(VideoJob(v.id, str(v.path)) for v in videos)
    }
    for shard in range(SHARDS):
        mine = videos[shard::SHARDS]
        rows = [
            {
                "clip_id": f"{v.id}_{i:04d}",
                "video_id": v.id,
                "task_id": v.task,
                "category": None,
                "idx": i,
                "start_ms": s.start_ms,
                "end_ms": s.end_ms,
                "text": " ".join(w.text for w in s.words),
                "text_no_stopwords": None,
                "n_words": len(s.words),
                "crawl_id": "demo",
            }
            for v in mine
            for i, s in enumerate(v.segments)
        ]
        clips = pa.Table.from_pylist(rows)
        write_shard(root, "clips", shard, clips, config_hash="demo", code_version="test", rows_in=len(rows))
        features = pa.concat_tables([tables[v.id] for v in mine])
        write_shard(
            root,
            "frame_features",
            shard,
            features,
            config_hash="demo",
            code_version="test",
            rows_in=len(mine),
        )
    return root
