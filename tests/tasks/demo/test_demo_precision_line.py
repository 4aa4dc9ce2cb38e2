"""The demo summary says which precision the features and the training ran in: `auto` takes bf16 only on a
CPU where it measured faster, and bf16 features move the recall figures by points between machines."""

from __future__ import annotations

from pathlib import Path

from flows.demo import precision_line
from storage.layout import DataRoot
from storage.schemas.frame_features import SCHEMA
from storage.shards import write_shard


def _features_shard(
    root: DataRoot, shard: int, computed_in: dict[str, int] | None, per_video: dict[str, str] | None = None
) -> None:
    extra: dict[str, object] = {"videos_computed_in": computed_in} if computed_in is not None else {}
    if per_video is not None:
        extra["video_precision"] = per_video
    write_shard(root, "frame_features", shard, SCHEMA.empty_table(), config_hash="h", code_version="test",
                rows_in=0, extra=extra)  # fmt: skip


def test_the_line_sums_the_shards_precisions_and_names_training(tmp_path: Path) -> None:
    root = DataRoot.from_any(str(tmp_path / "data"))
    _features_shard(root, 0, {"bf16": 3})
    _features_shard(root, 1, {"bf16": 1, "fp32": 2})  # a shard resumed on another machine
    _features_shard(root, 2, None)  # written before the count was kept: adds nothing
    line = precision_line(root, {"precision": "fp32"})
    assert line is not None
    assert line.startswith("  precision: features bf16 (4 videos), fp32 (2 videos); training fp32 (")
    assert "`howto doctor`" in line


def test_videos_reused_from_an_earlier_run_are_counted(tmp_path: Path) -> None:
    """A rerun that reused every video computed none, and the line still names their precision."""
    root = DataRoot.from_any(str(tmp_path / "data"))
    _features_shard(root, 0, {}, {"a": "bf16", "b": "bf16"})
    _features_shard(root, 1, {"fp32": 1}, {"c": "fp32", "d": "not recorded"})
    line = precision_line(root, {})
    assert line is not None
    assert line.startswith("  precision: features bf16 (2 videos), fp32 (1 video), not recorded (1 video) (")


def test_no_line_without_anything_to_say(tmp_path: Path) -> None:
    root = DataRoot.from_any(str(tmp_path / "data"))
    assert precision_line(root, {}) is None
    assert precision_line(root, {"precision": "bf16"}) == (
        "  precision: training bf16 (`auto` is bf16 only on a CPU where it measured faster than fp32, "
        "see `howto doctor`; the other precision gives other recall figures)"
    )
