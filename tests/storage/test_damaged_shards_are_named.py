"""A damaged shard or marker is never read, and never silently: a truncated file under a marker, a marker
that cannot be parsed, a stray file in `_markers/` are logged naming the file and the reason; readers that
take a shard by number refuse a damaged file in one line naming it; a stray marker name costs its dataset
no other shard."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from storage.catalog import query
from storage.layout import DataRoot, DataRootProblem
from storage.schemas import SCHEMAS
from storage.shards import ShardUnreadable, list_markers, read_shard, shard_files
from tasks.synthetic.training import write_synthetic_root
from tasks.train.data import pair_shards
from tasks.train.prepare import build_pairs_shard, ready_shards
from tests.storage.catalog_data import build_root

HOWTO = str(Path(sys.executable).with_name("howto"))


def _shard(root: DataRoot, dataset: str, shard: int) -> Path:
    return Path(root.shard_path(dataset, SCHEMAS[dataset].version, shard))


def _marker(root: DataRoot, dataset: str, shard: int) -> Path:
    return Path(root.marker_path(dataset, SCHEMAS[dataset].version, shard))


def _truncate(path: Path) -> None:
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size // 2)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_a_truncated_shard_under_its_marker_is_left_out_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = build_root(tmp_path)
    damaged = _shard(root, "clips", 1)
    _truncate(damaged)
    with caplog.at_level(logging.WARNING, logger="storage"):
        files = shard_files(root, "clips")
    assert str(damaged) not in files and len(files) == 2
    named = [m for m in _warnings(caplog) if str(damaged) in m]
    assert named and "bytes" in named[0] and "redone" in named[0]


def test_a_marker_that_cannot_be_parsed_is_named(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = build_root(tmp_path)
    garbled = _marker(root, "clips", 2)
    garbled.write_text('{"dataset": "cl')
    with caplog.at_level(logging.WARNING, logger="storage"):
        shards = [m.shard for m in list_markers(root, "clips")]
    assert shards == [0, 1]
    assert any(str(garbled) in m and "cannot be read" in m for m in _warnings(caplog))


def test_a_stray_marker_name_is_ignored_with_a_warning_and_costs_no_view(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = build_root(tmp_path)
    stray = _marker(root, "videos", 0).with_name("part-old.json")
    stray.write_text(_marker(root, "videos", 0).read_text())
    with caplog.at_level(logging.WARNING, logger="storage"):
        assert [m.shard for m in list_markers(root, "videos")] == [0]
    assert any(str(stray) in m for m in _warnings(caplog))
    assert query("SELECT count(*) FROM videos", root).rows == [(2,)]
    assert query("SELECT count(*) FROM video_catalog WHERE keep", root).rows == [(1,)]


def test_stats_names_a_damaged_shard_on_stderr(tmp_path: Path) -> None:
    root = build_root(tmp_path)
    damaged = _shard(root, "videos", 0)
    _truncate(damaged)
    out = subprocess.run(
        [HOWTO, "stats", "--data-root", root.url], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    warning = [line for line in out.stderr.splitlines() if "WARNING" in line and str(damaged) in line]
    assert warning, out.stderr
    assert "probed=0" in out.stdout  # the damaged shard is not read: its stage redoes it


def test_read_shard_of_a_damaged_file_names_it(tmp_path: Path) -> None:
    root = build_root(tmp_path)
    damaged = _shard(root, "clips", 0)
    _truncate(damaged)
    with pytest.raises(ShardUnreadable, match=str(damaged)) as raised:
        read_shard(root, "clips", 0)
    assert isinstance(raised.value, DataRootProblem)  # the CLI's one line and exit 2
    assert "\n" not in str(raised.value)
    assert read_shard(root, "clips", 9) is None  # a shard that does not exist is still None


def test_pair_shards_leaves_out_a_damaged_clip_pairs_shard(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = write_synthetic_root(tmp_path / "root", n_videos=12, clips_per_video=3, shards=2, dim=8)
    for shard in ready_shards(root):
        build_pairs_shard(root, shard)
    assert pair_shards(root) == [0, 1]
    damaged = _shard(root, "clip_pairs", 1)
    _truncate(damaged)
    with caplog.at_level(logging.WARNING, logger="storage"):
        assert pair_shards(root) == [0]
    assert any(str(damaged) in m for m in _warnings(caplog))
