"""Probed info dicts kept in the data root (`info/{video_id}.info.json`) so later stages never re-probe."""

from __future__ import annotations

import json
import time
from typing import Any

from storage.atomic import atomic_write_bytes
from storage.layout import DataRoot
from tasks.youtube.ids import check_video_id
from tasks.youtube.sanitize import info_problem

INFO_DIR = "info"


def info_relpath(video_id: str) -> str:
    """The path relative to the data root; the id is validated first so it can never escape `info/`."""
    return f"{INFO_DIR}/{check_video_id(video_id)}.info.json"


def save_info(root: DataRoot, video_id: str, info: dict[str, Any]) -> str:
    """Keep a sanitized info dict; returns its path relative to the data root (the `info_path` column)."""
    rel = info_relpath(video_id)
    atomic_write_bytes(root, root.path(rel), json.dumps(info, ensure_ascii=False, sort_keys=True).encode())
    return rel


def load_info(root: DataRoot, relpath_or_id: str, max_age_s: float | None = None) -> dict[str, Any] | None:
    """A kept info dict by `info_path` or video id; None if missing, unreadable, or older than `max_age_s`.

    YouTube's caption and media URLs expire after some hours: callers that will fetch them pass a max age.
    """
    rel = relpath_or_id if relpath_or_id.endswith(".info.json") else info_relpath(relpath_or_id)
    if not rel.startswith(f"{INFO_DIR}/") or ".." in rel:
        raise ValueError(f"not an info path: {rel!r}")
    path = root.path(rel)
    try:
        if max_age_s is not None:
            modified = root.fs.modified(path).timestamp()
            if time.time() - modified > max_age_s:
                return None
        with root.open(path, "rb") as handle:
            data = json.loads(handle.read().decode())
    except (FileNotFoundError, OSError, ValueError, RecursionError):
        # RecursionError: JSON nested deeper than the parser can follow is as unreadable as a torn file.
        return None
    return data if isinstance(data, dict) else None


def load_reusable_info(
    root: DataRoot, relpath_or_id: str, max_age_s: float | None = None
) -> dict[str, Any] | None:
    """A kept info dict to hand back to yt-dlp; None also for one the probe would not keep now (Infinity or
    NaN, from a run before that check or a crafted root): yt-dlp itself fails on it (its format table runs
    int() on an infinite filesize), where a fresh extraction serves."""
    info = load_info(root, relpath_or_id, max_age_s)
    return info if info is not None and info_problem(info) is None else None
