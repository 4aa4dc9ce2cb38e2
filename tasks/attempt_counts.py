"""Per-item counts of failed tries, kept as a small JSON file in a shard's work folder under the data root
(the features stage's decode failures, the tasks stage's aborted parses)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from storage.atomic import atomic_write_bytes, read_json_or_none
from storage.layout import DataRoot


def read_counts(root: DataRoot, path: str) -> dict[str, int]:
    """The counts at `path` (item -> tries); empty when none were written, or the file is unreadable (at worst
    an item gets its tries again)."""
    data = read_json_or_none(root, path)
    return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}


def write_counts(root: DataRoot, path: str, counts: Mapping[str, int]) -> None:
    atomic_write_bytes(root, path, json.dumps(counts, sort_keys=True, ensure_ascii=False).encode())
