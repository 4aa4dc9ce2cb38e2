"""Schema of `search_results`: every flat search hit, ranked, with the prefilter decision."""

import pyarrow as pa

NAME = "search_results"
VERSION = 1
SCHEMA = pa.schema(
    [
        pa.field("task_id", pa.string(), nullable=False),
        pa.field("query", pa.string(), nullable=False),
        pa.field("rank", pa.int32()),  # 1-based position in the results
        pa.field("video_id", pa.string()),  # null when the hit's id is not a plain video id
        pa.field("title", pa.string()),
        pa.field("duration_s", pa.float64()),
        pa.field("view_count", pa.int64()),
        pa.field("url", pa.string()),
        pa.field("keep", pa.bool_(), nullable=False),  # passed the prefilter
        pa.field("drop_reason", pa.string()),
        pa.field("status", pa.string(), nullable=False),
        pa.field("error", pa.string()),
        pa.field("crawl_id", pa.string(), nullable=False),
    ]
)
