"""A small data root for the catalog tests: three clips shards plus one videos and one captions shard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from storage.catalog import refresh
from storage.layout import DataRoot
from storage.schemas import SCHEMAS
from storage.shards import write_shard
from tests.storage.test_shards import clips_table


def rows_table(dataset: str, rows: list[dict[str, Any]]) -> pa.Table:
    """A table of the dataset's schema; columns a row leaves out are null."""
    return pa.Table.from_pylist(rows, schema=SCHEMAS[dataset].schema)


def _write(root: DataRoot, dataset: str, shard: int, table: pa.Table) -> None:
    write_shard(root, dataset, shard, table, config_hash="h", code_version="x", rows_in=table.num_rows)


def build_root(tmp_path: Path) -> DataRoot:
    """Clips of videos 000…, 111…, 222… (two each), two probed videos of which the captions drop one."""
    root = DataRoot.from_any(tmp_path / "data")
    for shard in range(3):
        _write(root, "clips", shard, clips_table([f"{shard}" * 11] * 2))
    videos = [
        {"video_id": "0" * 11, "duration_s": 3600.0, "keep": True, "status": "ok", "crawl_id": "c0"},
        {"video_id": "1" * 11, "duration_s": 60.0, "keep": True, "status": "ok", "crawl_id": "c0"},
    ]
    _write(root, "videos", 0, rows_table("videos", videos))
    captions = [
        {"video_id": "0" * 11, "n_words": 500, "keep": True, "status": "ok", "crawl_id": "c0"},
        {
            "video_id": "1" * 11,
            "n_words": 3,
            "keep": False,
            "drop_reason": "too_few_words",
            "status": "ok",
            "crawl_id": "c0",
        },
    ]
    _write(root, "captions", 0, rows_table("captions", captions))
    refresh(root)
    return root
