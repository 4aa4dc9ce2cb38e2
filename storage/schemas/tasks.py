"""Schema of `tasks`: wikiHow (or imported) tasks with the visual-task decision."""

import pyarrow as pa

NAME = "tasks"
VERSION = 1
SCHEMA = pa.schema(
    [
        pa.field("task_id", pa.string(), nullable=False),  # sha256(de-dup key of the title)[:16]: stable
        pa.field("source_id", pa.string()),  # wikiHow page id, or the imported file's id (line number)
        pa.field("source", pa.string()),  # "wikihow" | "import:howto100m" | "import:lines" | "import:csv"
        pa.field("title", pa.string()),  # exactly as given or parsed
        pa.field("url", pa.string()),
        pa.field("category_path", pa.list_(pa.string())),  # leaf ... level-1
        pa.field("n_methods", pa.int32()),
        pa.field("n_steps", pa.int32()),
        pa.field("steps", pa.list_(pa.string())),  # bold step summaries, in order
        pa.field("keep", pa.bool_(), nullable=False),
        # abstract_category | category_not_allowed | abstract_verb | verb_not_allowed | duplicate |
        # not_an_article | not_found | parse_limit (its parse aborted at its limits 3 times) | no_category |
        # no_verb; null when kept or on a transient error
        pa.field("drop_reason", pa.string()),
        # "ok" | "error" (transient: retried next run) | "failed" (permanent: 404, not an article, parse_limit)
        pa.field("status", pa.string(), nullable=False),
        pa.field("error", pa.string()),
        pa.field("crawl_id", pa.string(), nullable=False),
    ]
)
