"""Info files of every age: numbers written as strings, and JSON that is no yt-dlp info file at all."""

from __future__ import annotations

from typing import Any

import pytest
from info_files import load_info as load

from tasks.youtube.decision import (
    INVALID_ID,
    INVALID_METADATA,
    NO_ENGLISH,
    NOT_VIDEO_INFO,
    UNKNOWN_DURATION,
    decide,
    not_video_info,
)
from tasks.youtube.sanitize import info_problem


def test_2019_youtube_dl_file_as_published() -> None:
    d = decide(load("youtube-dl-2019_oz14IUf0b1M"))
    assert (d.video_id, d.duration_s, d.view_count) == ("oz14IUf0b1M", 63.0, 2632)
    assert d.drop_reason == NO_ENGLISH  # its youtube-dl listed no caption tracks at all


def test_2013_youtube_dl_duration_string_is_a_number() -> None:
    """youtube-dl wrote YouTube's `length_seconds` through as a string until Dec 2013 ("63"), and ''
    when missing: the same video must get the same decision as from its 2019 file, not unknown_duration."""
    old = load("youtube-dl-2013-shape_oz14IUf0b1M")
    assert old["duration"] == "63"
    d = decide(old)
    assert (d.duration_s, d.view_count, d.drop_reason) == (63.0, 2632, NO_ENGLISH)
    assert info_problem(old) is None
    assert decide({**old, "duration": ""}).drop_reason == UNKNOWN_DURATION


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("15", 15.0), (" 15 ", 15.0), ("62.647", 62.647), ("0", 0.0), ("", None), ("PT1M", None),
     ("1e3", None), ("nan", None), ("inf", None), ("-5", None), ("١٥", None)],
)  # fmt: skip
def test_duration_strings(raw: str, seconds: float | None) -> None:
    old = load("youtube-dl-2013-shape_oz14IUf0b1M")
    assert decide({**old, "duration": raw}).duration_s == seconds


def test_count_strings() -> None:
    old = load("youtube-dl-2013-shape_oz14IUf0b1M")
    assert decide({**old, "view_count": "99"}).drop_reason == "too_few_views"
    assert decide({**old, "view_count": "2632"}).view_count == 2632
    huge = "9" * 30
    assert decide({**old, "view_count": huge}).drop_reason == INVALID_METADATA
    assert "view_count" in (info_problem({**old, "view_count": huge}) or "")


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        ({}, "empty"),
        ({"error": {"code": 403, "message": "quotaExceeded"}}, "no video fields"),
        (  # YouTube Data API v3 videos.list: a response, not a video
            {"kind": "youtube#videoListResponse", "items": [{"kind": "youtube#video", "id": "oz14IUf0b1M"}]},
            "YouTube Data API",
        ),
        (  # one Data API video resource: a valid id, but durations like PT1M3S and no caption tracks
            {"kind": "youtube#video", "id": "oz14IUf0b1M", "contentDetails": {"duration": "PT1M3S"}},
            "YouTube Data API",
        ),
        ({"_type": "playlist", "id": "PLPZy-hmwOdEXdOtXdFzyx_XCnrF_oD2Ft", "entries": []}, "playlist"),
        ({"_type": "url", "id": "oz14IUf0b1M", "url": "oz14IUf0b1M", "ie_key": "Youtube"}, "url"),
    ],
)
def test_json_that_is_not_a_video_info_says_so(doc: dict[str, Any], says: str) -> None:
    d = decide(doc)
    assert d.drop_reason == NOT_VIDEO_INFO and not d.keep
    assert says in (not_video_info(doc) or "")


def test_a_2021_playlist_file_without_type_is_not_a_video() -> None:
    """yt-dlp wrote a playlist's own info file without `_type` in 2021: its extractor says what it is, and it
    is dropped as not a video, not as a video with a bad id."""
    playlist = load("yt-dlp-2021_playlist_PLoopXDarluPBnuxs4PTC55Sc_2ShAXC0i")
    assert "_type" not in playlist and playlist["extractor_key"] == "YoutubeTab"
    assert "YoutubeTab" in (not_video_info(playlist) or "")
    assert decide(playlist).drop_reason == NOT_VIDEO_INFO
    video = load("yt-dlp-2025-11_jNQXAC9IVRw")
    assert video["extractor_key"] == "Youtube" and not_video_info(video) is None


def test_video_info_with_a_bad_id_is_still_invalid_id() -> None:
    old = load("youtube-dl-2013-shape_oz14IUf0b1M")
    assert not_video_info(old) is None
    assert decide({**old, "id": "../x"}).drop_reason == INVALID_ID
    assert decide({k: v for k, v in old.items() if k != "id"}).drop_reason == INVALID_ID


@pytest.mark.parametrize("odd", [["YoutubeTab"], {"key": "Youtube"}, 7, None])
def test_an_extractor_key_that_is_no_string_decides_nothing_by_itself(odd: Any) -> None:
    """Only a string names an extractor: a real video file with any other `extractor_key` is still a video,
    and a real playlist file with one still has no video id, so neither raises (a list is unhashable)."""
    video = {**load("yt-dlp-2025-11_jNQXAC9IVRw"), "extractor_key": odd}
    assert not_video_info(video) is None and decide(video).keep
    playlist = {**load("yt-dlp-2021_playlist_PLoopXDarluPBnuxs4PTC55Sc_2ShAXC0i"), "extractor_key": odd}
    assert decide(playlist).drop_reason == INVALID_ID
