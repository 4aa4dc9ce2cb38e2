"""Atomic shard writes, markers and readers against real Parquet files."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

from storage.layout import DataRoot
from storage.schemas import SchemaError, get_schema, validate_table
from storage.shards import (
    is_done,
    list_markers,
    read_dataset,
    read_marker,
    shard_files,
    verify_shard,
    write_shard,
)
from tasks.common import code_version


def clips_table(video_ids: list[str]) -> pa.Table:
    n = len(video_ids)
    return pa.table(
        {
            "clip_id": [f"{v}_{i:04d}" for i, v in enumerate(video_ids)],
            "video_id": video_ids,
            "task_id": ["t1"] * n,
            "category": ["Food and Entertaining"] * n,
            "idx": pa.array(range(n), pa.int32()),
            "start_ms": pa.array([i * 1000 for i in range(n)], pa.int64()),
            "end_ms": pa.array([i * 1000 + 900 for i in range(n)], pa.int64()),
            "text": ["add the salt"] * n,
            "text_no_stopwords": ["add salt"] * n,
            "n_words": pa.array([3] * n, pa.int32()),
            "crawl_id": ["crawl-0000"] * n,
        }
    )


def test_validation_names_dataset_and_column() -> None:
    table = clips_table(["abcdefghijk"]).set_column(5, "start_ms", pa.array(["zero"]))
    with pytest.raises(SchemaError, match=r"clips: column 'start_ms' has type string, expected int64"):
        validate_table("clips", table)


def test_validation_rejects_missing_and_extra_columns() -> None:
    table = clips_table(["abcdefghijk"])
    with pytest.raises(SchemaError, match="clips: missing column"):
        validate_table("clips", table.drop_columns(["text"]))
    with pytest.raises(SchemaError, match="clips: unexpected column"):
        validate_table("clips", table.append_column("oops", pa.array([1])))


def test_validation_rejects_nulls_in_required_column() -> None:
    table = clips_table(["abcdefghijk"]).set_column(1, "video_id", pa.array([None], pa.string()))
    with pytest.raises(SchemaError, match="clips: column 'video_id' has 1 null"):
        validate_table("clips", table)


def test_write_then_done_only_for_same_config(tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path)
    write_shard(
        root,
        "clips",
        3,
        clips_table(["a" * 11] * 4),
        config_hash="h1",
        code_version="x",
        rows_in=5,
        drops={"too_short": 1},
    )
    assert is_done(root, "clips", 3, "h1")
    assert not is_done(root, "clips", 3, "h2")
    assert not is_done(root, "clips", 4, "h1")
    marker = read_marker(root, "clips", 3)
    assert marker is not None and (marker.rows_in, marker.rows_out, marker.drops) == (5, 4, {"too_short": 1})
    assert Path(root.shard_path("clips", 1, 3)).name == "part-00003.parquet"


def test_marker_without_file_is_not_done(tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path)
    write_shard(root, "clips", 0, clips_table(["a" * 11]), config_hash="h", code_version="x", rows_in=1)
    Path(root.shard_path("clips", 1, 0)).unlink()
    assert not is_done(root, "clips", 0, "h")


def test_rewrite_with_new_config_replaces_marker(tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path)
    write_shard(root, "clips", 0, clips_table(["a" * 11]), config_hash="old", code_version="x", rows_in=1)
    write_shard(root, "clips", 0, clips_table(["b" * 11] * 2), config_hash="new", code_version="x", rows_in=2)
    assert is_done(root, "clips", 0, "new") and not is_done(root, "clips", 0, "old")
    assert read_dataset(root, "clips").count_rows() == 2


KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import pyarrow as pa
    import storage.atomic as atomic
    import storage.shards as shards
    from storage.layout import DataRoot
    sys.path.insert(0, {tests!r})
    from test_shards import clips_table
    root = DataRoot.from_any({root!r})
    # Crash exactly between the temp write and the rename, as a power cut or OOM kill would.
    atomic.before_rename_hook = lambda tmp: os.kill(os.getpid(), signal.SIGKILL)
    shards.write_shard(root, "clips", 7, clips_table(["a" * 11]), config_hash="h", code_version="x", rows_in=1)
    """
)


def test_kill_between_temp_write_and_rename_leaves_nothing_visible(tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path / "root")
    script = KILL_SCRIPT.format(tests=str(Path(__file__).parent), root=root.url)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()
    assert shard_files(root, "clips") == []
    assert read_marker(root, "clips", 7) is None
    assert not is_done(root, "clips", 7, "h")
    # the temp file is there (proof the kill came after the write) but invisible to readers
    leftovers = list(Path(root.dataset_dir("clips", 1)).glob(".tmp-*"))
    assert len(leftovers) == 1
    assert read_dataset(root, "clips").count_rows() == 0


def test_reader_streams_all_shards(tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path)
    for shard in range(3):
        write_shard(
            root,
            "clips",
            shard,
            clips_table([f"{shard}" * 11] * (shard + 1)),
            config_hash="h",
            code_version="x",
            rows_in=shard + 1,
        )
    dataset = read_dataset(root, "clips")
    assert dataset.count_rows() == 6
    assert sorted(dataset.to_table(columns=["video_id"]).column(0).to_pylist()) == sorted(
        ["0" * 11, "1" * 11, "1" * 11, "2" * 11, "2" * 11, "2" * 11]
    )
    assert [m.shard for m in list_markers(root, "clips")] == [0, 1, 2]


def test_fsspec_memory_root_round_trip() -> None:
    root = DataRoot.from_any("memory://howto-test-root")
    write_shard(root, "clips", 0, clips_table(["m" * 11] * 2), config_hash="h", code_version="x", rows_in=2)
    assert is_done(root, "clips", 0, "h")
    assert read_dataset(root, "clips").count_rows() == 2


def test_file_without_marker_is_invisible_to_readers(tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path)
    write_shard(root, "clips", 0, clips_table(["a" * 11]), config_hash="h", code_version="x", rows_in=1)
    # An orphan: a shard file copied in by hand (or left by a crash between rename and marker).
    shutil.copy(root.shard_path("clips", 1, 0), root.shard_path("clips", 1, 1))
    assert shard_files(root, "clips") == [root.shard_path("clips", 1, 0)]
    assert read_dataset(root, "clips").count_rows() == 1


def test_truncated_shard_under_marker_is_not_done_and_not_read(tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path)
    write_shard(root, "clips", 0, clips_table(["a" * 11] * 3), config_hash="h", code_version="x", rows_in=3)
    marker = read_marker(root, "clips", 0)
    assert marker is not None and marker.file_bytes == Path(root.shard_path("clips", 1, 0)).stat().st_size
    path = Path(root.shard_path("clips", 1, 0))
    path.write_bytes(path.read_bytes()[: marker.file_bytes // 2])
    assert not is_done(root, "clips", 0, "h")
    assert verify_shard(root, marker) is not None
    assert shard_files(root, "clips") == []
    assert read_dataset(root, "clips").count_rows() == 0


def test_same_size_but_wrong_rows_is_caught(tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path)
    write_shard(root, "clips", 0, clips_table(["a" * 11] * 3), config_hash="h", code_version="x", rows_in=3)
    marker = read_marker(root, "clips", 0)
    assert marker is not None
    forged = dataclasses.replace(marker, rows_out=7)
    assert verify_shard(root, forged) == "shard file has 3 rows, its marker says 7"


def test_marker_records_code_and_config(tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path)
    write_shard(
        root, "clips", 0, clips_table(["a" * 11]), config_hash="h", code_version=code_version(), rows_in=1,
        own_hash="own", inputs={"videos": "abc"}, config={"min_words": 3},
    )  # fmt: skip
    marker = read_marker(root, "clips", 0)
    assert marker is not None and marker.config == {"min_words": 3} and marker.inputs == {"videos": "abc"}
    # In a git checkout the commit is recorded, not just the package version.
    if (Path(__file__).resolve().parents[2] / ".git").exists():
        assert "+g" in marker.code_version


def test_whole_shard_reads_never_hand_arrow_a_python_file_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Arrow frees a fragment over a Python file object in its own threads, and doing so while the
    interpreter finalizes aborted `howto export` (SIGABRT after its work, storage/shards.py): a local shard
    is read by its path, an object store's from its bytes in memory; the rows are the same either way."""
    import pyarrow.parquet as pq

    from storage.shards import read_parquet_file, read_shard

    given: list[object] = []
    real_read_table = pq.read_table

    def recording(source: object, *args: object, **kwargs: object) -> pa.Table:
        given.append(source)
        return real_read_table(source, *args, **kwargs)

    monkeypatch.setattr(pq, "read_table", recording)
    table = clips_table(["v" * 11] * 3)
    for root in (DataRoot.from_any(tmp_path), DataRoot.from_any("memory://howto-native-reads")):
        write_shard(root, "clips", 0, table, config_hash="h", code_version="x", rows_in=3)
        given.clear()
        got = read_shard(root, "clips", 0)
        assert got is not None and got.column("clip_id").to_pylist() == table.column("clip_id").to_pylist()
        ids = read_parquet_file(
            root, root.shard_path("clips", get_schema("clips").version, 0), columns=["video_id"]
        )
        assert ids.column_names == ["video_id"] and ids.num_rows == 3
        assert len(given) == 2
        want = str if root.is_local else pa.BufferReader
        assert all(isinstance(source, want) for source in given), given
        assert verify_shard(root, read_marker(root, "clips", 0)) is None  # its row count, read natively too


def test_float_columns_are_stored_plain_and_the_rest_dictionary_encoded(tmp_path: Path) -> None:
    """Feature vectors (list<float16>) read 4x faster as plain values than as dictionary indices, which
    a float16 column never outgrows; string and integer columns keep the dictionary."""
    import numpy as np
    import pyarrow.parquet as pq

    from storage.shards import dictionary_columns, read_shard
    from tasks.bench.training import write_bench_pairs

    root = DataRoot.from_any(tmp_path)
    write_bench_pairs(root, videos=4, clips=8, d_video=16, d_text=8, shards=1)
    path = next(tmp_path.glob("clip_pairs/v*/part-*.parquet"))
    meta = pq.ParquetFile(path).metadata.row_group(0)
    chunks = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
    vector = next(c for name, c in chunks.items() if name.startswith("vector"))
    assert not vector.has_dictionary_page
    assert "RLE_DICTIONARY" not in vector.encodings
    assert chunks["video_id"].has_dictionary_page
    table = read_shard(root, "clip_pairs", 0)
    assert table is not None
    vectors = np.stack(table.column("vector").to_numpy(zero_copy_only=False))
    assert vectors.shape == (32, 16) and vectors.dtype == np.float16
    schema = pa.schema(
        [("a", pa.list_(pa.float32())), ("b", pa.string()), ("c", pa.float64()), ("d", pa.int32())]
    )
    assert dictionary_columns(schema) == ["b", "d"]


def test_float16_vectors_are_stored_uncompressed_and_the_rest_with_zstd(tmp_path: Path) -> None:
    """Decompressing float16 features was a quarter of a shard's read for almost no space: their column is
    written without a codec, every other column (text vectors in float32 included) asks for zstd, and
    DuckDB reads the shards."""
    import duckdb
    import pyarrow.parquet as pq

    from storage.shards import column_compression
    from tasks.bench.training import write_bench_pairs

    root = DataRoot.from_any(tmp_path)
    write_bench_pairs(root, videos=4, clips=8, d_video=16, d_text=8, shards=1)
    codecs = {}
    for dataset in ("clip_pairs", "text_embeddings"):
        path = next(tmp_path.glob(f"{dataset}/v*/part-*.parquet"))
        meta = pq.ParquetFile(path).metadata.row_group(0)
        codecs[dataset] = {
            meta.column(i).path_in_schema: meta.column(i).compression for i in range(meta.num_columns)
        }
        total = duckdb.sql(f"SELECT count(*), sum(len(vector)) FROM '{path}'").fetchall()[0]
        assert total == (32, 32 * (16 if dataset == "clip_pairs" else 8))
    assert codecs["clip_pairs"]["vector.list.element"] == "UNCOMPRESSED"
    assert codecs["clip_pairs"]["clip_id"] == codecs["clip_pairs"]["text"] == "ZSTD"
    # (Arrow itself stores a column uncompressed where zstd would not shrink it, as for these few random
    # float32 values: the codec asked for is column_compression's.)
    assert codecs["text_embeddings"]["clip_id"] == "ZSTD"
    schema = pa.schema([("v", pa.list_(pa.float16())), ("w", pa.list_(pa.float32())), ("s", pa.string())])
    assert column_compression(schema) == {"v": "none", "w": "zstd", "s": "zstd"}


def test_wide_rows_get_row_groups_of_bounded_bytes_and_narrow_rows_keep_64k(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Arrow decodes a row group's column on one thread: a feature shard's vectors are split into row
    groups of at most ROW_GROUP_BYTES so they decode on every core; narrow tables keep groups of up to
    ROW_GROUP_SIZE rows for their statistics. The rows read back unchanged either way."""
    import numpy as np
    import pyarrow.parquet as pq

    import storage.shards as shards
    from storage.shards import read_shard, row_group_rows
    from tasks.bench.training import write_bench_pairs

    narrow = pa.table({"a": pa.array(np.arange(200_000, dtype=np.int64))})
    assert row_group_rows(narrow) == shards.ROW_GROUP_SIZE
    # Rows of 516 bytes: groups of ROW_GROUP_BYTES (32513 rows); rows of vectors (384 float32 and an
    # offset, 1540 bytes): groups of VECTOR_GROUP_BYTES, so a 12 MiB text cache shard is 4 groups, not 1.
    mid = pa.table({"b": pa.array(np.zeros((1000, 64)).tolist(), pa.list_(pa.float64()))})
    assert row_group_rows(mid) == int(shards.ROW_GROUP_BYTES // (mid.nbytes / 1000)) == 32_513
    text = pa.table({"v": pa.array(np.zeros((8192, 384), np.float32).tolist(), pa.list_(pa.float32()))})
    assert row_group_rows(text) == int(shards.VECTOR_GROUP_BYTES // (text.nbytes / 8192)) == 2723
    wide = pa.table({"v": pa.array(np.zeros(10, dtype=np.float64))})
    monkeypatch.setattr(shards, "ROW_GROUP_BYTES", 40)  # 8 bytes a row: 5 rows a group
    assert row_group_rows(wide) == 5
    monkeypatch.setattr(shards, "ROW_GROUP_BYTES", 1)  # less than a row: one row a group
    assert row_group_rows(wide) == 1

    monkeypatch.setattr(shards, "ROW_GROUP_BYTES", 16 * 2 * 10)  # ten rows of 16 float16 (plus offsets)
    root = DataRoot.from_any(tmp_path)
    write_bench_pairs(root, videos=4, clips=8, d_video=16, d_text=8, shards=1)
    path = next(tmp_path.glob("clip_pairs/v*/part-*.parquet"))
    metadata = pq.ParquetFile(path).metadata
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert sum(sizes) == 32 and len(sizes) >= 4 and max(sizes) < 10, sizes
    table = read_shard(root, "clip_pairs", 0)
    assert table is not None
    rng = np.random.default_rng(0)  # write_bench_pairs' own draw: the rows come back in order, exact
    expected = rng.standard_normal((32, 16)).astype(np.float16)
    assert np.array_equal(np.stack(table.column("vector").to_numpy(zero_copy_only=False)), expected)


def test_vector_values_are_stored_required_and_older_optional_shards_still_read(tmp_path: Path) -> None:
    """Vector columns declare non-null values, which Parquet stores as a required field (Arrow decodes it
    without a null bitmap, about twice as fast). A shard written before, with optional values and zstd,
    reads as the same table through read_shard, and DuckDB reads the old and the new shard together."""
    import duckdb
    import numpy as np
    import pyarrow.parquet as pq

    from storage.schemas.vectors import vector_of
    from storage.shards import read_shard
    from tasks.bench.training import write_bench_pairs

    root = DataRoot.from_any(tmp_path)
    write_bench_pairs(root, videos=4, clips=8, d_video=16, d_text=8, shards=2)
    paths = sorted(tmp_path.glob("clip_pairs/v*/part-*.parquet"))
    parquet_schema = str(pq.ParquetFile(paths[0]).schema)
    assert "required fixed_len_byte_array(2) field_id=-1 element (Float16)" in parquet_schema
    new = read_shard(root, "clip_pairs", 1)
    assert new is not None and new.schema.field("vector").type == vector_of(pa.float16())
    # Shard 1 rewritten as an older writer made it: optional values, zstd everywhere.
    older = new.cast(
        pa.schema(
            [
                f if f.name != "vector" else pa.field("vector", pa.list_(pa.float16()), False)
                for f in new.schema
            ]
        )
    )
    pq.write_table(older, paths[1], compression="zstd")
    assert "optional fixed_len_byte_array(2)" in str(pq.ParquetFile(paths[1]).schema)
    again = read_shard(root, "clip_pairs", 1)
    assert again is not None and again.equals(new)
    vectors = np.stack(again.column("vector").to_numpy(zero_copy_only=False))
    assert vectors.shape == (16, 16) and vectors.dtype == np.float16
    files = ", ".join(f"'{p}'" for p in paths)
    rows = duckdb.sql(f"SELECT count(*), sum(len(vector)) FROM read_parquet([{files}])").fetchall()
    assert rows == [(32, 32 * 16)]


def test_a_local_shard_read_stays_valid_after_its_file_is_cut_short_or_replaced(tmp_path: Path) -> None:
    """Local shards are memory-mapped for the read (storage/shards.py `_parse`): the table decoded from
    them owns its memory, so cutting the file short afterwards (where a mapped page would fault with
    SIGBUS) or replacing it leaves the rows as they were read. Run in a child: a SIGBUS would end it."""
    script = textwrap.dedent(
        f"""
        import os
        import numpy as np, pyarrow as pa
        from storage.layout import DataRoot
        from storage.shards import read_shard, write_shard
        from storage.schemas import get_schema
        from tasks.bench.training import write_bench_pairs
        root = DataRoot.from_any({str(tmp_path)!r})
        write_bench_pairs(root, videos=40, clips=8, d_video=256, d_text=4, shards=1)
        table = read_shard(root, "clip_pairs", 0)
        expected = np.asarray(table.column("vector").combine_chunks().flatten()).copy()
        path = root.shard_path("clip_pairs", get_schema("clip_pairs").version, 0)
        os.truncate(path, 16)
        got = np.asarray(table.column("vector").combine_chunks().flatten())
        assert np.array_equal(got, expected) and table.column("text")[319].as_py() == "caption 319"
        write_bench_pairs(root, videos=40, clips=8, d_video=256, d_text=4, shards=1, seed=5)
        assert np.array_equal(np.asarray(table.column("vector").combine_chunks().flatten()), expected)
        print("ok", len(expected))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["ok", str(320 * 256)]
