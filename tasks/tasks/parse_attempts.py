"""Aborted parses of an article, counted per shard: a page past its limits is given up after a few tries.

A parse stopped at its time or memory limit may have met a loaded machine, so it is retried on the next run;
but a page that is pathological in itself would be fetched and parsed again on every run, each time at its
full cost (seconds, up to `tasks.parse_memory_mb`), forever. So the aborts of each title are counted in a
small JSON file in the shard's work folder, as the features stage counts the decode failures of a video,
and the PARSE_ATTEMPTS-th abort makes the row "failed" (kept, never retried) with drop_reason "parse_limit".
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

from storage.layout import DataRoot
from tasks import attempt_counts

# Aborted parses of one page, on as many runs, before its row is failed for good.
PARSE_ATTEMPTS = 3
PARSE_LIMIT = "parse_limit"  # the drop reason of a page given up on
_FILE = "parse_attempts.json"


def count_abort(counts: MutableMapping[str, int], title: str) -> int:
    """Add one aborted parse of `title` to `counts` (title -> aborts so far); returns which try it was."""
    counts[title] = counts.get(title, 0) + 1
    return counts[title]


def given_up(tries: int) -> bool:
    """Whether the `tries`-th aborted parse of a page is its last one."""
    return tries >= PARSE_ATTEMPTS


def read_counts(root: DataRoot, work: str) -> dict[str, int]:
    """The shard's counts (title -> aborted parses)."""
    return attempt_counts.read_counts(root, f"{work}/{_FILE}")


def write_counts(root: DataRoot, work: str, counts: Mapping[str, int]) -> None:
    attempt_counts.write_counts(root, f"{work}/{_FILE}", counts)
