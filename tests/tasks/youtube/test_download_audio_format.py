"""The download format takes audio along: split formats are merged with an audio stream, a muxed format
keeps its own, a video offered without audio still downloads; the audio-only fetch prefers audio alone."""

from __future__ import annotations

from typing import Any

import yt_dlp

from tasks.youtube.video_download import AUDIO_FORMAT, FORMAT, FORMAT_SORT


def _fmt(fid: str, height: int | None, vcodec: str, acodec: str, size: int) -> dict[str, Any]:
    return {
        "format_id": fid, "url": f"http://127.0.0.1:9/{fid}", "ext": "mp4" if vcodec != "none" else "m4a",
        "width": height and height * 16 // 9, "height": height, "vcodec": vcodec, "acodec": acodec,
        "filesize": size, "protocol": "http",
    }  # fmt: skip


def _chosen(formats: list[dict[str, Any]], spec: str) -> str:
    info = {"id": "abcdefghijk", "title": "t", "formats": formats, "extractor": "x", "extractor_key": "X",
            "webpage_url": "http://127.0.0.1:9/watch"}  # fmt: skip
    with yt_dlp.YoutubeDL(
        {"format": spec, "format_sort": FORMAT_SORT, "quiet": True, "simulate": True}
    ) as ydl:
        return str(ydl.process_ie_result(info, download=False)["format_id"])


SPLIT = [
    _fmt("160", 144, "avc1.4d400c", "none", 1_000),
    _fmt("134", 360, "avc1.4d401e", "none", 5_000),
    _fmt("136", 720, "avc1.4d401f", "none", 20_000),
    _fmt("139", None, "none", "mp4a.40.5", 500),
    _fmt("140", None, "none", "mp4a.40.2", 1_500),
]


def test_split_formats_merge_the_smallest_video_past_224_with_audio() -> None:
    assert _chosen(SPLIT, FORMAT) == "134+139"


def test_muxed_format_keeps_its_own_audio() -> None:
    muxed = [
        _fmt("18", 360, "avc1.42001E", "mp4a.40.2", 8_000),
        _fmt("22", 720, "avc1.64001F", "mp4a.40.2", 30_000),
    ]
    assert _chosen(muxed, FORMAT) == "18"


def test_video_without_any_audio_still_downloads() -> None:
    assert _chosen(SPLIT[:3], FORMAT) == "134"


def test_audio_fetch_takes_audio_alone_when_offered() -> None:
    assert _chosen(SPLIT, AUDIO_FORMAT) == "139"
    assert _chosen([_fmt("18", 360, "avc1.42001E", "mp4a.40.2", 8_000)], AUDIO_FORMAT) == "18"


def _tracks(preferences: dict[str, int]) -> list[dict[str, Any]]:
    """Each audio format of SPLIT once per track, as yt-dlp's YouTube extractor marks them (original 10,
    default 5, a dub -1, an audio description -10); each later track a few bytes smaller."""
    return [
        {**fmt, "format_id": f"{fmt['format_id']}-{language}", "filesize": fmt["filesize"] - 10 * k,
         "language": language, "language_preference": preference}
        for fmt in SPLIT[3:]
        for k, (language, preference) in enumerate(preferences.items())
    ]  # fmt: skip


def test_dubbed_video_takes_the_original_language_not_the_smallest_track() -> None:
    """English (the original), a German dub and an English audio description, each smaller than the one
    before: the merge and the audio fetch both take the original. Before, the ascending size sort took
    the description track."""
    formats = SPLIT[:3] + _tracks({"en": 10, "de": -1, "en-desc": -10})
    assert _chosen(formats, FORMAT) == "134+139-en"
    assert _chosen(formats, AUDIO_FORMAT) == "139-en"
    # No track marked original: the player's default one wins over the smaller ones.
    formats = SPLIT[:3] + _tracks({"en": 5, "de": -1, "en-desc": -10})
    assert _chosen(formats, FORMAT) == "134+139-en"
    assert _chosen(formats, AUDIO_FORMAT) == "139-en"


def test_a_standard_dynamic_range_format_is_taken_over_a_smaller_hdr_one() -> None:
    # An HDR video with no H.264 past 224 px: YouTube offers each VP9 size in SDR and in HDR (vp09.02,
    # HDR10), the HDR one sometimes the smaller. Decoded without tone mapping, its frames' colours are
    # washed out: SDR first, whatever the size.
    formats = [
        {**_fmt("278", 144, "vp09.00.11.08", "none", 800), "dynamic_range": "SDR"},
        {**_fmt("242", 240, "vp09.00.20.08", "none", 3_000), "dynamic_range": "SDR"},
        {**_fmt("695", 240, "vp09.02.20.10.01.09.16.09.00", "none", 2_500), "dynamic_range": "HDR10"},
        {**_fmt("243", 360, "vp09.00.21.08", "none", 6_000), "dynamic_range": "SDR"},
        _fmt("139", None, "none", "mp4a.40.5", 500),
    ]
    assert _chosen(formats, FORMAT) == "242+139"
