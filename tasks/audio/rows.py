"""Turn audio results into `audio_features` rows: float16 vectors per second, or one status row."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from storage.schemas.audio_features import SCHEMA
from tasks.audio.extract import AudioResult
from tasks.features.rows import _vector_column

WITH_ROWS = ("ok", "silent")  # statuses whose vectors are real; the others are one status row


def audio_table(result: AudioResult, model: str, random: bool) -> pa.Table:
    if result.status in WITH_ROWS and len(result.vectors):
        n = len(result.vectors)
        columns = {
            "video_id": [result.video_id] * n,
            "model": [model] * n,
            "idx": np.arange(n, dtype=np.int32),
            "t_start_ms": result.t_start_ms,
            "t_end_ms": result.t_end_ms,
            "random_weights": [random] * n,
            "status": [result.status] * n,
            "error": [result.error] * n,
        }
        vectors = result.vectors.astype(np.float16)
    else:
        columns = {
            "video_id": [result.video_id], "model": [model], "idx": np.array([-1], np.int32),
            "t_start_ms": np.zeros(1, np.int64), "t_end_ms": np.zeros(1, np.int64), "random_weights": [random],
            "status": [result.status], "error": [result.error or "no rows"],
        }  # fmt: skip
        vectors = np.zeros((1, 0), np.float16)
    arrays = {name: pa.array(values, SCHEMA.field(name).type) for name, values in columns.items()}
    arrays["vector"] = _vector_column([vectors])
    return pa.Table.from_pydict({name: arrays[name] for name in SCHEMA.names}, schema=SCHEMA)


def empty_audio_table() -> pa.Table:
    return SCHEMA.empty_table()
