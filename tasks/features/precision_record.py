"""Which compute precision each video's features were made in, kept across reruns.

Rows carry no precision (a schema change for it would redo every shard), so the shard marker records it per
video, and a video parked as a part carries it in the part's Parquet metadata. A rerun that reuses rows
(every video done earlier, upstream changed) or parked parts (a crash, a retried shard) then still knows
them, and the demo's summary line can say "features bf16 (37 videos)" instead of nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

# The marker's extra key: video id -> precision ("fp32", "bf16", "fp16") for each video with features.
MARKER_KEY = "video_precision"
# The part file's schema metadata key.
PART_KEY = b"howto.precision"
# A video reused from a shard written before precisions were recorded.
UNRECORDED = "not recorded"


def tag_part(table: pa.Table, precision: str) -> pa.Table:
    """`table` with its precision in the schema metadata, for a parked part."""
    return table.replace_schema_metadata({**(table.schema.metadata or {}), PART_KEY: precision.encode()})


def untag_part(table: pa.Table) -> tuple[pa.Table, str | None]:
    """A part's rows without the tag (shards are written with the plain schema), and its precision."""
    metadata = dict(table.schema.metadata or {})
    raw = metadata.pop(PART_KEY, None)
    return table.replace_schema_metadata(metadata or None), raw.decode() if raw is not None else None


def video_precisions(
    with_features: Iterable[str],
    computed_now: Mapping[str, str],
    from_parts: Mapping[str, str],
    from_previous_marker: Mapping[str, str],
) -> dict[str, str]:
    """Each video with features -> its precision: made in this run, parked by an earlier attempt, or reused
    from the shard's previous marker, in that order; UNRECORDED when none of them knows."""
    out = {}
    for video_id in sorted(set(with_features)):
        out[video_id] = (
            computed_now.get(video_id)
            or from_parts.get(video_id)
            or from_previous_marker.get(video_id)
            or UNRECORDED
        )
    return out


def marker_precisions(extra: Mapping[str, Any] | None, with_features: Iterable[str] = ()) -> dict[str, str]:
    """The per-video precisions a marker's extra recorded. A marker written before they were still tells when
    its run computed every video of its shard in one precision: `with_features` (the videos with features in
    the shard it describes) then all have it; otherwise {}."""
    value = (extra or {}).get(MARKER_KEY)
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    computed = (extra or {}).get("videos_computed_in") or {}
    videos = set(with_features)
    if isinstance(computed, dict) and len(computed) == 1 and videos:
        (precision, count), *_ = computed.items()
        if count == len(videos):
            return dict.fromkeys(sorted(videos), str(precision))
    return {}


def precision_counts(extras: Iterable[Mapping[str, Any] | None]) -> Counter[str]:
    """Videos per precision over the shards' markers. A marker without the per-video record falls back to
    its count of the videos computed in its own run (what older markers kept)."""
    counts: Counter[str] = Counter()
    for extra in extras:
        per_video = marker_precisions(extra)
        if per_video:
            counts.update(per_video.values())
        else:
            counts.update((extra or {}).get("videos_computed_in") or {})
    return counts
