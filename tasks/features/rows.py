"""Turn extraction results into `frame_features` rows: float16 vectors, or one status row per failure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pyarrow as pa

from storage.schemas.frame_features import SCHEMA
from tasks.features.extractor import VideoResult


def result_table(result: VideoResult, models: Iterable[str], random: Mapping[str, bool]) -> pa.Table:
    """One row per feature vector; a failed video gets one row per model with its status and error."""
    columns: dict[str, list[object]] = {name: [] for name in SCHEMA.names}
    vectors: list[np.ndarray] = []
    for model in models:
        rows = result.rows.get(model)
        if result.status != "ok" or rows is None:
            _append(
                columns,
                result.video_id,
                model,
                -1,
                0,
                0,
                random.get(model, False),
                result.status,
                result.error or "no rows",
            )
            vectors.append(np.zeros((1, 0), np.float16))
            continue
        for k in range(len(rows.vectors)):
            _append(
                columns,
                result.video_id,
                model,
                k,
                int(rows.t_start_ms[k]),
                int(rows.t_end_ms[k]),
                random.get(model, False),
                "ok",
                None,
            )
        vectors.append(rows.vectors.astype(np.float16))
    del columns["vector"]
    arrays = {name: pa.array(values, SCHEMA.field(name).type) for name, values in columns.items()}
    arrays["vector"] = _vector_column(vectors)
    return pa.Table.from_pydict({name: arrays[name] for name in SCHEMA.names}, schema=SCHEMA)


def _append(
    columns: dict[str, list[object]],
    video_id: str,
    model: str,
    idx: int,
    start: int,
    end: int,
    random: bool,
    status: str,
    error: str | None,
) -> None:
    for name, value in (
        ("video_id", video_id),
        ("model", model),
        ("idx", idx),
        ("t_start_ms", start),
        ("t_end_ms", end),
        ("random_weights", random),
        ("status", status),
        ("error", error),
    ):
        columns[name].append(value)


def _vector_column(blocks: list[np.ndarray]) -> pa.Array:
    """A list<float16> column built from 2D blocks without a Python loop over values."""
    lengths = [b.shape[1] for b in blocks for _ in range(b.shape[0])]
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int32)
    flat = np.concatenate([b.reshape(-1) for b in blocks]) if blocks else np.zeros(0, np.float16)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.float16()))


def empty_table() -> pa.Table:
    return SCHEMA.empty_table()
