"""Each video's compute precision survives reruns: parked parts carry it in their Parquet metadata, markers
record it per video, and a reused video takes it from the shard's previous marker."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.features.precision_record import (
    UNRECORDED,
    marker_precisions,
    precision_counts,
    tag_part,
    untag_part,
    video_precisions,
)


def test_a_part_keeps_its_precision_through_a_parquet_file_and_comes_back_plain() -> None:
    table = pa.table({"video_id": ["v1", "v1"]}).replace_schema_metadata({b"other": b"kept"})
    buffer = io.BytesIO()
    pq.write_table(tag_part(table, "bf16"), buffer)
    part, precision = untag_part(pq.read_table(pa.BufferReader(buffer.getvalue())))
    assert precision == "bf16"
    assert part.schema.metadata is not None and b"howto.precision" not in part.schema.metadata
    assert part.schema.metadata[b"other"] == b"kept"
    assert part.column("video_id").to_pylist() == ["v1", "v1"]


def test_an_untagged_part_has_no_precision_and_concatenates_with_tagged_ones() -> None:
    plain, precision = untag_part(pa.table({"video_id": ["v2"]}))
    assert precision is None
    tagged, _ = untag_part(tag_part(pa.table({"video_id": ["v1"]}), "fp32"))
    assert pa.concat_tables([tagged, plain]).column("video_id").to_pylist() == ["v1", "v2"]


def test_each_video_takes_this_run_then_its_part_then_the_previous_marker() -> None:
    got = video_precisions(
        ["a", "b", "c", "d", "a"],
        computed_now={"a": "bf16"},
        from_parts={"a": "fp32", "b": "fp32"},
        from_previous_marker={"b": "bf16", "c": "bf16"},
    )
    assert got == {"a": "bf16", "b": "fp32", "c": "bf16", "d": UNRECORDED}


def test_marker_precisions_reads_only_a_per_video_record() -> None:
    assert marker_precisions(None) == {}
    assert marker_precisions({"videos_computed_in": {"bf16": 2}}) == {}
    assert marker_precisions({"video_precision": {"a": "fp16"}}) == {"a": "fp16"}
    assert marker_precisions({"video_precision": ["not", "a", "mapping"]}) == {}


def test_counts_use_the_per_video_record_and_fall_back_to_older_markers_counts() -> None:
    extras = [
        {"videos_computed_in": {}, "video_precision": {"a": "bf16", "b": "bf16"}},  # all reused
        {"videos_computed_in": {"fp32": 1}, "video_precision": {"c": "fp32", "d": UNRECORDED}},
        {"videos_computed_in": {"bf16": 3}},  # an older marker
        None,
        {},
    ]
    assert precision_counts(extras) == {"bf16": 5, "fp32": 1, UNRECORDED: 1}


def test_an_older_marker_tells_when_its_run_computed_every_video_in_one_precision() -> None:
    older = {"videos_computed_in": {"bf16": 2}}
    assert marker_precisions(older, ["a", "b"]) == {"a": "bf16", "b": "bf16"}
    assert marker_precisions(older, ["a", "b", "c"]) == {}  # c was reused then: unknown
    assert (
        marker_precisions({"videos_computed_in": {"bf16": 1, "fp32": 1}}, ["a", "b"]) == {}
    )  # which is which?
    assert marker_precisions({"videos_computed_in": {}}, ["a"]) == {}
    assert marker_precisions(older, []) == {}
    recorded = {"videos_computed_in": {"bf16": 2}, "video_precision": {"a": "fp32"}}
    assert marker_precisions(recorded, ["a", "b"]) == {"a": "fp32"}  # the record wins
