"""A shard's work folders of older config hashes go once the shard is written; other shards' folders stay.

They used to stay forever: a features run with row errors parks the finished videos' features under its own
config hash, and after a config change the shard was redone under a new hash and the old parts were never read
(nor removed) again."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flows.extract_features import extract_features
from storage.layout import DataRoot
from storage.shards import read_shard
from tasks.features.config import ExtractFeaturesConfig
from tasks.shard_work import drop_shard_work, shard_work_dir, shard_work_dirs
from tests.flows.downloads import root_with_downloaded_videos

VIDEO = "shortvid001"
CFG = ExtractFeaturesConfig(
    random_weights=True, short_side_2d=32, size_3d=32, batch_2d=4, batch_3d=4, decode_workers=1
)


def _names(paths: list[str]) -> list[str]:
    return [p.rstrip("/").rsplit("/", 1)[-1] for p in paths]


def test_a_shards_folders_are_told_from_other_shards_by_the_whole_number(tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path)
    assert shard_work_dirs(root, "frame_features", 1) == []  # no stage folder yet
    for shard, own in ((1, "aa"), (1, "bb"), (10, "aa"), (10000, "aa"), (100000, "aa")):
        Path(shard_work_dir(root, "frame_features", shard, own)).mkdir(parents=True)
    assert _names(shard_work_dirs(root, "frame_features", 1)) == ["part-00001-aa", "part-00001-bb"]
    assert _names(shard_work_dirs(root, "frame_features", 10000)) == ["part-10000-aa"]
    assert _names(shard_work_dirs(root, "frame_features", 100000)) == ["part-100000-aa"]
    assert _names(drop_shard_work(root, "frame_features", 1, keep_hash="bb")) == ["part-00001-aa"]
    assert _names(shard_work_dirs(root, "frame_features", 1)) == ["part-00001-bb"]
    assert _names(drop_shard_work(root, "frame_features", 1)) == ["part-00001-bb"]
    assert _names(shard_work_dirs(root, "frame_features", 10)) == ["part-00010-aa"]  # untouched


def test_parts_parked_under_an_older_config_are_not_reused_and_go_with_the_finished_shard(
    tmp_path: Path,
) -> None:
    root = root_with_downloaded_videos(tmp_path, {VIDEO: 2})
    # What a run under another config left: the video's features parked, and a decode failure counted.
    stale = Path(shard_work_dir(root, "frame_features", 0, "0ldhash"))
    stale.mkdir(parents=True)
    pq.write_table(pa.table({"video_id": [VIDEO], "model": ["resnet152"]}), stale / f"{VIDEO}.parquet")
    (stale / "decode_attempts.json").write_text(json.dumps({VIDEO: 2}))
    other_shard = Path(shard_work_dir(root, "frame_features", 1, "0ldhash"))
    other_shard.mkdir(parents=True)

    summary = extract_features(CFG, root.url)

    assert summary["errors"] == 0
    table = read_shard(root, "frame_features", 0)
    assert table is not None
    rows = table.filter(pc.equal(table.column("video_id"), VIDEO)).to_pylist()
    # Extracted afresh under this config: both models, real feature rows (the stale part had neither).
    assert {r["model"] for r in rows} == {"resnet152", "resnext101"}
    assert all(r["status"] == "ok" for r in rows)
    assert not stale.exists()
    assert shard_work_dirs(root, "frame_features", 0) == []  # nothing to retry: its own folder went too
    assert other_shard.exists()
