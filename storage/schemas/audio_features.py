"""Schema of `audio_features`: one L2-normalised audio-encoder vector per second of a video's mono track."""

import pyarrow as pa

from storage.schemas.vectors import vector_of

NAME = "audio_features"
VERSION = 1
SCHEMA = pa.schema(
    [
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("model", pa.string(), nullable=False),  # "cnn14" | "logmel_stats"
        pa.field("idx", pa.int32(), nullable=False),  # second index within (video, model); -1 on a status row
        pa.field("t_start_ms", pa.int64(), nullable=False),
        pa.field("t_end_ms", pa.int64(), nullable=False),
        pa.field("vector", vector_of(pa.float16()), nullable=False),  # empty on a status row
        pa.field("random_weights", pa.bool_(), nullable=False),
        # ok | silent (rows kept, the track is quiet throughout) | no_audio | failed (corrupt) | error (retry)
        pa.field("status", pa.string(), nullable=False),
        pa.field("error", pa.string()),
    ]
)
