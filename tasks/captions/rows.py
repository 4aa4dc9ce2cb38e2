"""Turn one video's caption file into its `captions` row and `clips` rows (pure: no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tasks.captions.clips import cut_clips
from tasks.captions.config import FetchCaptionsConfig
from tasks.captions.track import Kind, Track
from tasks.captions.vtt import parse_vtt

# Drop reasons, in the order process_track checks them (the first failing check names the row). The
# stage also files videos whose track it could not get under UNAVAILABLE.
UNDECODABLE = "undecodable_captions"  # bytes in no text encoding we can tell (see encoding.py)
UNREADABLE = "unreadable_captions"  # nothing readable as WebVTT
TIME_GOES_BACK = "captions_go_back_in_time"  # cue times restart: two downloads in one file
PAST_VIDEO_END = "captions_past_video_end"  # cues start well after the video ends: another video's track
TOO_FEW_WORDS = "too_few_words"
UNAVAILABLE = "unavailable"

# Listed durations are whole seconds and the last cue often holds a few seconds past the end (up to 4 s
# on 752 youtube-dl tracks with their info files, SOURCES.md): only a start well past the end counts.
PAST_END_SLACK_MS = 10_000


def caption_row(video: Mapping[str, Any], vtt_path: str | None, **values: Any) -> dict[str, Any]:
    """A `captions` row for a video, empty facts unless given."""
    row: dict[str, Any] = {
        "video_id": video["video_id"],
        "task_id": video.get("task_id"),
        "caption_lang": video.get("caption_lang"),
        "caption_kind": video.get("caption_kind"),
        "vtt_path": vtt_path,
        "n_segments": None,
        "n_words": None,
        "dropped_tags": None,
        "n_clips": 0,
        "keep": False,
        "drop_reason": None,
        "status": "ok",
        "error": None,
        "crawl_id": video["crawl_id"],
    }
    row.update(values)
    return row


def process_track(
    video: Mapping[str, Any],
    data: bytes,
    cfg: FetchCaptionsConfig,
    *,
    vtt_path: str,
    category: str | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Parse and clean the track, apply the words rule, and cut the kept video's clips."""
    kind: Kind | None = video.get("caption_kind") if video.get("caption_kind") in ("auto", "manual") else None
    track = parse_vtt(
        data, kind=kind, language=video.get("caption_lang"), keep_non_speech=cfg.keep_non_speech
    )
    if track.refused is not None:
        # Re-downloading gives the same bytes: a permanent failure, recorded with its reason.
        error = f"{vtt_path}: {track.refused}"
        return caption_row(video, vtt_path, status="failed", error=error, drop_reason=UNDECODABLE), []
    facts = {
        "caption_kind": track.kind,
        "caption_lang": track.language,
        "n_segments": len(track.segments),
        "n_words": track.n_words,
        "dropped_tags": track.dropped_tags,
    }
    if not track.segments and track.warnings:
        # A corrupt file is a permanent failure: recorded, not downloaded again on every run.
        error = f"{vtt_path}: " + "; ".join(track.warnings)
        return caption_row(video, vtt_path, **facts, status="failed", error=error, drop_reason=UNREADABLE), []
    reason = _timeline_reason(track, video.get("duration_s"))
    if reason is None and track.n_words < cfg.min_words:
        reason = TOO_FEW_WORDS
    if reason is not None:
        return caption_row(video, vtt_path, **facts, drop_reason=reason), []
    clips = cut_clips(
        track.segments, min_ms=cfg.clip_min_ms, max_ms=cfg.clip_max_ms, stop_words=cfg.stop_words
    )
    vid = video["video_id"]
    clip_rows = [
        {
            "clip_id": f"{vid}_{c.idx:04d}",
            "video_id": vid,
            "task_id": video.get("task_id"),
            "category": category,
            "idx": c.idx,
            "start_ms": c.start_ms,
            "end_ms": c.end_ms,
            "text": c.text,
            "text_no_stopwords": c.text_no_stopwords,
            "n_words": c.n_words,
            "crawl_id": video["crawl_id"],
        }
        for c in clips
    ]
    return caption_row(video, vtt_path, **facts, n_clips=len(clip_rows), keep=True), clip_rows


def _timeline_reason(track: Track, duration_s: object) -> str | None:
    """TIME_GOES_BACK or PAST_VIDEO_END when the cue times do not fit one run of this video, else None."""
    if track.jump_back is not None:
        return TIME_GOES_BACK
    if (
        isinstance(duration_s, int | float)
        and not isinstance(duration_s, bool)
        and track.last_start_ms is not None
        and track.last_start_ms > duration_s * 1000 + PAST_END_SLACK_MS
    ):
        return PAST_VIDEO_END
    return None
