"""Schema of `clips`: one row per caption segment (or merged segments) with its video span."""

import pyarrow as pa

NAME = "clips"
VERSION = 1
SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),  # {video_id}_{idx:04d}
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("task_id", pa.string()),
        pa.field("category", pa.string()),  # level-1 category of the task
        pa.field("idx", pa.int32(), nullable=False),
        pa.field("start_ms", pa.int64(), nullable=False),
        pa.field("end_ms", pa.int64(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("text_no_stopwords", pa.string()),
        pa.field("n_words", pa.int32(), nullable=False),
        pa.field("crawl_id", pa.string(), nullable=False),
    ]
)
