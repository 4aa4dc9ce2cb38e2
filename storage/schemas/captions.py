"""Schema of `captions`: one row per video with its downloaded track's facts and the words rule."""

import pyarrow as pa

NAME = "captions"
VERSION = 1
SCHEMA = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("task_id", pa.string()),
        pa.field("caption_lang", pa.string()),
        pa.field("caption_kind", pa.string()),  # "manual" | "auto"
        pa.field("vtt_path", pa.string()),
        pa.field("n_segments", pa.int32()),
        pa.field("n_words", pa.int32()),
        pa.field("dropped_tags", pa.int32()),  # [Music]-style non-speech tags removed
        pa.field("n_clips", pa.int32()),
        pa.field("keep", pa.bool_(), nullable=False),
        pa.field("drop_reason", pa.string()),  # e.g. too_few_words
        pa.field("status", pa.string(), nullable=False),
        pa.field("error", pa.string()),
        pa.field("crawl_id", pa.string(), nullable=False),
    ]
)
