"""Schema of `crawl_changes`: what one re-crawl generation added, found gone, or saw change (one shard per crawl)."""

import pyarrow as pa

NAME = "crawl_changes"
VERSION = 1
SCHEMA = pa.schema(
    [
        pa.field("crawl_id", pa.string(), nullable=False),  # the generation that saw the change
        pa.field("previous_crawl_id", pa.string()),  # the generation it is compared with
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("change", pa.string(), nullable=False),  # added | vanished | views
        pa.field("task_id", pa.string()),
        pa.field("keep", pa.bool_()),  # added: the probe's decision
        pa.field("views_before", pa.int64()),  # views: the search hit's count in each generation
        pa.field("views_after", pa.int64()),
    ]
)
