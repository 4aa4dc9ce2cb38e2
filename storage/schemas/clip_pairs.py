"""Schema of `clip_pairs`: one training pair per clip, its caption and its pooled 2D+3D video vector."""

import pyarrow as pa

from storage.schemas.vectors import vector_of

NAME = "clip_pairs"
VERSION = 1
SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("task_id", pa.string()),
        pa.field("idx", pa.int32(), nullable=False),  # clip order within the video
        pa.field("start_ms", pa.int64(), nullable=False),
        pa.field("end_ms", pa.int64(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        # max-pool over the clip span per model, L2 per model, then concat (resnet152 first): 4096 values
        pa.field("vector", vector_of(pa.float16()), nullable=False),
    ]
)
