"""A folder that holds no dataset (a mistyped --data-root, a folder of something else) gets no catalog
written into it: reading it answers over empty views and leaves the folder as it was."""

from __future__ import annotations

from pathlib import Path

from storage.catalog import holds_datasets, query, stats
from storage.layout import DataRoot
from tests.storage.catalog_data import build_root


def test_reading_a_folder_without_datasets_writes_nothing_there(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()  # a folder of something else
    root = DataRoot.from_any(tmp_path)
    assert not holds_datasets(root)
    assert query("SELECT 1", root).rows == [(1,)]
    assert query("SELECT count(*) FROM videos", root).rows == [(0,)]
    assert stats(root)["videos"]["probed"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes"]


def test_a_data_root_holds_datasets(tmp_path: Path) -> None:
    assert holds_datasets(build_root(tmp_path))
    assert not holds_datasets(DataRoot.from_any(tmp_path / "missing"))
