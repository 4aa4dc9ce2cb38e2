"""Values from the data shown in Markdown as text: never table syntax, HTML or links.

Used by the dataset cards (`howto report`'s, the Hugging Face export's) and the Prefect artifacts (stage and
pipeline summaries, per-shard tables), which the Prefect UI renders as Markdown. Drop reasons, categories,
caption kinds and languages, caption sources and crawl ids are read from the shards, and some come from the
web (a task's category is whatever wikiHow's page says, a caption track's language whatever the site names it). In a table cell a `|` ended the
cell and shifted the row; a line break ended the table; `<script>` or `<img onerror=...>` ran on any viewer
that renders a card's HTML unsanitised; `[..](..)` and `![..](..)` drew a link or loaded an image from anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# HTML's specials as entities: CommonMark decodes them to the characters, and no viewer reads them as tags.
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}
# Backslash-escaped (CommonMark allows it before any ASCII punctuation): the backslash itself first, so a
# value's own backslash cannot undo ours; `|` for tables (GFM honours `\|` inside a cell); brackets and the
# backtick for links, images and code spans. Emphasis (`*`, `_`) only changes how text looks: left as is,
# so drop reasons such as not_found stay readable in the raw card.
_BACKSLASHED = set("\\|[]`")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def md_text(value: object) -> str:
    """`value` as inline Markdown text, fit for a table cell or a list item: line breaks shown as <br>."""
    return "<br>".join(_escaped(line) for line in _LINE_BREAK.split(str(value)))


def _escaped(line: str) -> str:
    return "".join(_ENTITIES.get(ch) or ("\\" + ch if ch in _BACKSLASHED else ch) for ch in line)


def md_counts(counts: Mapping[str, object]) -> str:
    """`reason: n, ...` in the mapping's order, each name and value as text; `-` when there is none."""
    return ", ".join(f"{md_text(k)}: {md_text(v)}" for k, v in counts.items()) or "-"


def md_code(value: object) -> str:
    """`value` as a Markdown code span, fenced by more backticks than it holds in a row (CommonMark's rule),
    its line breaks as spaces (a blank line would end the paragraph, the span with it)."""
    text = " ".join(_LINE_BREAK.split(str(value)))
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"
