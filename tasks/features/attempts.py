"""Corrupt downloads get a few more tries: a broken file is far more often a cut transfer than a bad video."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from storage.layout import DataRoot
from tasks.attempt_counts import read_counts, write_counts
from tasks.features.extractor import VideoResult

# Decode failures of one video (each with a fresh download) before it is marked failed for good.
DECODE_ATTEMPTS = 3
_FILE = "decode_attempts.json"


def retry_corrupt(root: DataRoot, work: str, result: VideoResult, path: Path | None) -> VideoResult:
    """A decode failure becomes a retryable error (its file deleted, so the retry downloads it again)
    until DECODE_ATTEMPTS failures are counted for the video in this shard's work folder."""
    if result.status != "failed":
        return result
    counts = read_counts(root, f"{work}/{_FILE}")
    counts[result.video_id] = counts.get(result.video_id, 0) + 1
    write_counts(root, f"{work}/{_FILE}", counts)
    if path is not None:
        path.unlink(missing_ok=True)
    n = counts[result.video_id]
    if n >= DECODE_ATTEMPTS:
        return dataclasses.replace(result, error=f"{result.error} (after {n} downloads)")
    return dataclasses.replace(
        result, status="error", error=f"{result.error} (download {n} of {DECODE_ATTEMPTS}, retried next run)"
    )
