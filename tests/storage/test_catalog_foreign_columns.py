"""A shard whose marker checks out but whose columns are not its dataset's (copied from another version's
root, written by hand) is left out of the views with a line naming it, and redone by its stage: DuckDB
took a view's columns from its first file, so one such file retyped or broke the whole view."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storage.catalog import query
from storage.layout import DataRoot
from storage.schemas import columns_problem, get_schema
from storage.shards import is_done, read_marker, verify_shard
from tests.storage.catalog_data import build_root


def _retyped(table: pa.Table, name: str, kind: pa.DataType) -> pa.Table:
    return table.set_column(table.column_names.index(name), name, table.column(name).cast(kind))


CHANGES: dict[str, tuple[Callable[[pa.Table], pa.Table], str]] = {
    "renamed": (
        lambda t: t.rename_columns(["words" if n == "n_words" else n for n in t.column_names]),
        "missing n_words; unexpected words",
    ),
    "added": (lambda t: t.append_column("speaker", pa.array(["s"] * t.num_rows)), "unexpected speaker"),
    "widened": (lambda t: _retyped(t, "n_words", pa.int64()), "n_words is int64, expected int32"),
    "string": (lambda t: _retyped(t, "idx", pa.string()), "idx is string, expected int32"),
}


def _replace_shard_under_its_marker(root: DataRoot, change: Callable[[pa.Table], pa.Table]) -> str:
    """clips shard 0 rewritten with other columns, and its marker made to vouch for the new file (its size)."""
    path = root.shard_path("clips", 1, 0)
    pq.write_table(change(pq.read_table(path)), path)
    marker_path = Path(root.marker_path("clips", 1, 0))
    marker = json.loads(marker_path.read_text())
    marker["file_bytes"] = os.path.getsize(path)
    marker_path.write_text(json.dumps(marker))
    return path


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_a_shard_of_other_columns_is_left_out_and_named(
    tmp_path: Path, change: str, caplog: pytest.LogCaptureFixture
) -> None:
    root = build_root(tmp_path)
    rewrite, problem = CHANGES[change]
    path = _replace_shard_under_its_marker(root, rewrite)
    with caplog.at_level(logging.WARNING):
        rows = query("SELECT * FROM clips ORDER BY clip_id", root)
    # The other two shards, with the schema's columns and types: shard 0 neither retypes nor breaks the view.
    assert rows.columns == get_schema("clips").schema.names
    assert [r[1] for r in rows.rows] == ["1" * 11] * 2 + ["2" * 11] * 2
    types = query("SELECT DISTINCT typeof(idx), typeof(n_words) FROM clips", root).rows
    assert types == [("INTEGER", "INTEGER")]
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(path in line and problem in line for line in said), said
    # Its stage redoes it: the marker no longer counts as the shard done.
    marker = read_marker(root, "clips", 0)
    assert marker is not None and problem in (verify_shard(root, marker) or "")
    assert not is_done(root, "clips", 0, "h")


def test_what_reads_alike_is_no_difference() -> None:
    """Nullability, a list's value field name and large types read alike: older vector shards (optional
    values, `item`) and the current ones (required `element`) are both the dataset's columns."""
    schema = get_schema("frame_features").schema
    older = pa.schema(
        [
            pa.field(f.name, pa.list_(pa.float16()) if f.name == "vector" else f.type, nullable=True)
            for f in schema
        ]
    )
    assert columns_problem("frame_features", older) is None
    reordered = pa.schema(list(reversed(list(schema))))
    assert columns_problem("frame_features", reordered) is None
    large = pa.schema([pa.field(f.name, pa.large_string()) if f.type == pa.string() else f for f in schema])
    assert columns_problem("frame_features", large) is None
    floats32 = pa.schema(
        [pa.field("vector", pa.list_(pa.float32())) if f.name == "vector" else f for f in schema]
    )
    assert (
        columns_problem("frame_features", floats32)
        == "vector is list<item: float>, expected list<element: halffloat not null>"
    )
