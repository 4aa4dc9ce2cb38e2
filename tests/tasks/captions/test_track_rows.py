"""The per-track row: a track is checked against its video (duration, time order) before its words count."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks.captions.config import FetchCaptionsConfig
from tasks.captions.rows import (
    PAST_VIDEO_END,
    TIME_GOES_BACK,
    TOO_FEW_WORDS,
    UNDECODABLE,
    UNREADABLE,
    process_track,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
# A whole real ASR track and its video's duration from the same youtube-dl info (see SOURCES.md).
TRACK = (FIXTURES / "vtt" / "rolling_2019_whole_track_63s.en.vtt").read_bytes()
CFG = FetchCaptionsConfig(min_words=100)


def video(duration_s: float | None = 63.0, **over: Any) -> dict[str, Any]:
    row = {
        "video_id": "oz14IUf0b1M",
        "task_id": "t1",
        "caption_lang": "en",
        "caption_kind": "auto",
        "duration_s": duration_s,
        "crawl_id": "crawl-0000",
    }
    row.update(over)
    return row


def run(data: bytes, **over: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return process_track(video(**over), data, CFG, vtt_path="vtt/oz14IUf0b1M.en.vtt", category="Computers")


def test_real_track_within_its_video_is_kept() -> None:
    """The track's last cue ends at 62.24 s of a video listed as 63 s (62.647 s in its stream URL)."""
    row, clips = run(TRACK)
    assert row["keep"] and row["drop_reason"] is None and row["n_words"] == 126
    assert clips and clips[-1]["end_ms"] == 62_240


def test_track_appended_to_itself_goes_back_in_time() -> None:
    """Two downloads written into one file: the cues restart at 0 s; sorted together they interleaved
    two copies of every line into 368 "words" (of 126 spoken) that were kept."""
    row, clips = run(TRACK + b"\n" + TRACK)
    assert row["drop_reason"] == TIME_GOES_BACK and not row["keep"] and clips == []
    assert row["status"] == "ok"


def test_track_far_past_the_video_end_is_dropped() -> None:
    """A 63 s track filed under a 30 s video (another video's captions) used to give 126 kept words."""
    row, clips = run(TRACK, duration_s=30.0)
    assert row["drop_reason"] == PAST_VIDEO_END and clips == []


def test_unknown_duration_skips_the_end_check() -> None:
    row, _ = run(TRACK, duration_s=None)
    assert row["keep"]
    row, _ = run(TRACK, duration_s=55.0)  # within the slack: last cue starts at 59.88 s
    assert row["keep"]


def test_undecodable_file_is_a_failed_row_with_its_reason() -> None:
    data = "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\n大家好，我是来自 JetBrains 的 Rachel\n".encode("gbk")
    row, clips = run(data)
    assert row["status"] == "failed" and row["drop_reason"] == UNDECODABLE and clips == []
    assert row["error"].startswith("vtt/oz14IUf0b1M.en.vtt: ") and "encoding" in row["error"]


def test_reasons_are_checked_in_order() -> None:
    row, _ = run(b"\x00\x01 not a caption file")
    assert row["drop_reason"] == UNREADABLE
    row, _ = run(b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\ntoo short\n")
    assert row["drop_reason"] == TOO_FEW_WORDS
    # Going back in time is named before running past the end (an appended file often does both).
    row, _ = run(TRACK + b"\n" + TRACK, duration_s=30.0)
    assert row["drop_reason"] == TIME_GOES_BACK
