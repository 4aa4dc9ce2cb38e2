"""The type of the vector columns (features, embeddings): lists whose values are never null.

Parquet stores a list's values as a required or an optional field, and Arrow decodes a required one much
faster: it skips the null bitmap it builds value by value for an optional one. A feature shard's column
of 8192 x 4096 float16 values, uncompressed, read in 59 ms as required values against 95 ms as
optional ones (2 Xeon cores, medians of 5). No vector holds a null value, so the schemas say so. Shards
written with optional values before read as they did, cast to this type; DuckDB reads both alike.
"""

import pyarrow as pa


def vector_of(value: pa.DataType) -> pa.ListType:
    """A list of `value` with non-null values, its value field named as Parquet's compliant lists name it
    (pyarrow reads a list back as `element`; list types compare equal whatever the name)."""
    return pa.list_(pa.field("element", value, nullable=False))
