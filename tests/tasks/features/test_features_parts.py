"""Parked per-video parts: a temp file of an interrupted write is never taken for a finished video."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from storage.atomic import TMP_PREFIX
from storage.layout import DataRoot
from tasks.features.stage import _part_files


def test_temp_files_in_the_work_folder_are_not_parts(tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path)
    work = Path(root.path("_work", "frame_features", "part-00000-own"))
    work.mkdir(parents=True)
    table = pa.table({"video_id": ["aaaaaaaaaaa"]})
    pq.write_table(table, work / "aaaaaaaaaaa.parquet")
    # A complete temp file would duplicate rows, a truncated one would fail the shard on every run.
    pq.write_table(table, work / f"{TMP_PREFIX}0123-bbbbbbbbbbb.parquet")
    (work / f"{TMP_PREFIX}4567-ccccccccccc.parquet").write_bytes(b"PAR1 cut")
    assert [p.rsplit("/", 1)[1] for p in _part_files(root, str(work))] == ["aaaaaaaaaaa.parquet"]
