"""Schema of `crawl_changes`: what one re-crawl generation added, found gone, or saw change (one shard per crawl)."""

import pyarrow as pa

NAME = "crawl_changes"
# 2: caption changes (captions_before/after); recrawl re-records older generations in it.
VERSION = 2
SCHEMA = pa.schema(
    [
        pa.field("crawl_id", pa.string(), nullable=False),  # the generation that saw the change
        pa.field("previous_crawl_id", pa.string()),  # the generation it is compared with
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("change", pa.string(), nullable=False),  # added | vanished | returned | views | captions
        pa.field("task_id", pa.string()),
        pa.field("keep", pa.bool_()),  # added: the probe's decision
        pa.field("views_before", pa.int64()),  # views: the search hit's count in each generation
        pa.field("views_after", pa.int64()),
        # captions: manual | auto | translated_only | none, as last known and as the re-check saw it
        pa.field("captions_before", pa.string()),
        pa.field("captions_after", pa.string()),
    ]
)
