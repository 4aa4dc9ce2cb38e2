"""Schema of `videos`: one row per probed video with the keep/drop decision."""

import pyarrow as pa

NAME = "videos"
VERSION = 1
SCHEMA = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("task_id", pa.string()),  # the task where the video ranked best
        pa.field("rank", pa.int32()),
        pa.field("url", pa.string()),
        pa.field("title", pa.string()),
        pa.field("channel", pa.string()),
        pa.field("upload_date", pa.string()),
        pa.field("duration_s", pa.float64()),
        pa.field("view_count", pa.int64()),
        pa.field("live_status", pa.string()),
        pa.field("caption_lang", pa.string()),  # chosen track key, e.g. "en", "en-GB", "en-orig"
        pa.field("caption_kind", pa.string()),  # "manual" | "auto"
        pa.field("info_path", pa.string()),  # "info/{video_id}.info.json", relative to the data root
        pa.field("keep", pa.bool_(), nullable=False),
        pa.field("drop_reason", pa.string()),
        pa.field("status", pa.string(), nullable=False),
        pa.field("error", pa.string()),
        pa.field("unavailable_since", pa.string()),  # crawl id when a re-crawl found it gone
        pa.field("crawl_id", pa.string(), nullable=False),
    ]
)
