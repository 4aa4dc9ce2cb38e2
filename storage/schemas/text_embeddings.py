"""Schema of `text_embeddings`: cached frozen sentence-encoder vectors of each clip's caption."""

import pyarrow as pa

from storage.schemas.vectors import vector_of

NAME = "text_embeddings"
VERSION = 1
SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("encoder", pa.string(), nullable=False),  # e.g. "all-MiniLM-L6-v2"
        pa.field("vector", vector_of(pa.float32()), nullable=False),  # L2-normalised, 384 for MiniLM
    ]
)
