"""Schema of `availability`: each re-crawl's check of earlier kept videos (appended, never rewritten)."""

import pyarrow as pa

NAME = "availability"
VERSION = 1
SCHEMA = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("crawl_id", pa.string(), nullable=False),  # the re-crawl that checked it
        pa.field("available", pa.bool_()),  # null when the check itself failed (transient error)
        pa.field("status", pa.string(), nullable=False),  # "ok" | "error"
        pa.field("error", pa.string()),
        pa.field("checked_at", pa.string(), nullable=False),  # ISO-8601 UTC
    ]
)
