"""Benchmark videos already in the root's frame_features: their rows are found, and only shards that hold
them are read whole."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import tasks.evaluation.features as features
from storage.layout import DataRoot
from storage.shards import list_markers, read_shard, write_shard
from tasks.features.config import ExtractFeaturesConfig
from tasks.features.recorded import VECTOR_FIELDS
from tasks.synthetic.training import write_synthetic_root

CFG = ExtractFeaturesConfig(random_weights=True, short_side_2d=64, size_3d=32)
RECORDED = CFG.model_dump(mode="json", include=set(VECTOR_FIELDS))


def _root(tmp_path: Path) -> DataRoot:
    """Four shards of five videos (syn00000..syn00019); in shard 3, syn00015 failed on one model."""
    root = write_synthetic_root(
        tmp_path / "root", n_videos=20, clips_per_video=2, shards=4, dim=8, features_config=RECORDED
    )
    table = read_shard(root, "frame_features", 3)
    assert table is not None
    failed = pc.and_(
        pc.equal(table.column("video_id"), "syn00015"), pc.equal(table.column("model"), "resnext101")
    )
    table = table.set_column(
        table.schema.get_field_index("status"), "status", pc.if_else(failed, "error", table.column("status"))
    )
    write_shard(root, "frame_features", 3, table, config_hash="synthetic", code_version="synthetic",
                rows_in=table.num_rows, config=RECORDED)  # fmt: skip
    return root


def _reference(root: DataRoot, video_ids: set[str]) -> dict[str, pa.Table]:
    """Every shard read whole, in shard order; a video's rows from the first shard with an ok row of it."""
    found: dict[str, pa.Table] = {}
    for marker in list_markers(root, "frame_features"):
        table = read_shard(root, "frame_features", marker.shard)
        assert table is not None
        for vid in sorted(video_ids - set(found)):
            rows = table.filter(pc.equal(table.column("video_id"), vid))
            if "ok" in rows.column("status").to_pylist():
                found[vid] = rows
    return found


@pytest.mark.parametrize(
    ("wanted", "read_whole"),
    [
        ({"yc0001", "yc0002"}, []),  # a benchmark of other videos (YouCook2's): no shard read whole
        ({"syn00001", "syn00013", "yc0001"}, [0, 2]),
        ({"syn00015", "syn00016"}, [3]),  # a video with a failed model is still found, as before
        ({"syn00004"}, [0]),
    ],
)
def test_found_rows_match_reading_every_shard_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wanted: set[str], read_whole: list[int]
) -> None:
    root = _root(tmp_path)
    expected = _reference(root, wanted)
    reads: list[int] = []

    def counting_read_shard(r: DataRoot, dataset: str, shard: int) -> pa.Table | None:
        reads.append(shard)
        return read_shard(r, dataset, shard)

    monkeypatch.setattr(features, "read_shard", counting_read_shard)
    found = features.root_features(root, wanted, CFG)
    assert sorted(found) == sorted(expected)
    for vid, rows in expected.items():
        assert found[vid].equals(rows)
    assert reads == read_whole


def test_shards_of_another_config_are_never_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _root(tmp_path)
    monkeypatch.setattr(features, "read_parquet_file", lambda *a, **k: pytest.fail("read a shard"))
    assert features.root_features(root, {"syn00001"}, CFG.model_copy(update={"size_3d": 112})) == {}
