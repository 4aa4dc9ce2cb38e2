"""Schema of `frame_features`: per-frame (2D) or per-16-frame (3D) L2-normalised CNN features."""

import pyarrow as pa

from storage.schemas.vectors import vector_of

NAME = "frame_features"
VERSION = 1
SCHEMA = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("model", pa.string(), nullable=False),  # "resnet152" | "resnext101"
        pa.field("idx", pa.int32(), nullable=False),  # row index within (video, model)
        pa.field("t_start_ms", pa.int64(), nullable=False),
        pa.field("t_end_ms", pa.int64(), nullable=False),
        pa.field("vector", vector_of(pa.float16()), nullable=False),
        pa.field("random_weights", pa.bool_(), nullable=False),
        pa.field("status", pa.string(), nullable=False),  # a failed video is one row with status=error
        pa.field("error", pa.string()),
    ]
)
