"""Real info files found by scanning public repositories: a modern yt-dlp file with no caption tracks at all,
one under the view limit, and a youtube-dl `ytsearch1:` result (a playlist) passed where a video is expected."""

from __future__ import annotations

import pytest
from info_files import load_info as load

from tasks.youtube.decision import (
    CAPTIONS_NONE,
    NO_ENGLISH,
    NOT_VIDEO_INFO,
    TOO_FEW_VIEWS,
    caption_state,
    choose_caption,
    decide,
    not_video_info,
)
from tasks.youtube.sanitize import info_problem, sanitize_info

NO_CAPTIONS = "yt-dlp-2025-01_no-captions_VcG1DZ4IlPg"
FEW_VIEWS = "yt-dlp-2025-01_15-views_QhGfXJEvM-g"
SEARCH = "youtube-dl-2020_ytsearch1-playlist_ugRc5jx80yg"


@pytest.mark.parametrize("name", [NO_CAPTIONS, FEW_VIEWS, SEARCH])
def test_scanned_files_are_storable_before_and_after_sanitizing(name: str) -> None:
    info = load(name)
    assert info_problem(info) is None
    clean = sanitize_info(info)
    assert info_problem(clean) is None
    assert decide(clean) == decide(info)


def test_2025_file_with_no_caption_tracks_at_all_is_dropped_as_no_english() -> None:
    """yt-dlp 2025.01.26 lists both caption maps, empty (an instrumental track): nothing to choose, and
    no translation either, so the drop names missing English rather than translated-only captions."""
    info = load(NO_CAPTIONS)
    assert info["subtitles"] == {} and info["automatic_captions"] == {}
    assert info["requested_subtitles"] is None
    assert choose_caption(info) is None
    assert caption_state(info) == CAPTIONS_NONE
    d = decide(info)
    assert d.summary() == {
        "video_id": "VcG1DZ4IlPg",
        "duration_s": 581.0,
        "view_count": 131303,
        "caption": None,
        "keep": False,
        "drop_reason": NO_ENGLISH,
    }
    assert (d.title, d.channel, d.upload_date, d.live_status) == (
        "Cold Burn",
        "Cult of Luna",
        "20220210",
        "not_live",
    )


def test_2025_file_under_the_view_limit_names_the_view_rule_first() -> None:
    """15 views and no captions: the limits are checked before the captions, so the row says too_few_views."""
    d = decide(load(FEW_VIEWS))
    assert (d.video_id, d.duration_s, d.view_count) == ("QhGfXJEvM-g", 52.0, 15)
    assert (d.keep, d.drop_reason, d.caption) == (False, TOO_FEW_VIEWS, None)


def test_youtube_dl_search_result_is_no_video_but_its_entry_is() -> None:
    """`youtube-dl -J ytsearch1:test` (2020): a `_type: playlist` (`YoutubeSearch`) wrapping one full video
    info dict. The wrapper is refused; its entry is an ordinary youtube-dl 2020 video, whose empty caption
    maps mean captions were not asked for (youtube-dl filled them only with --write-sub/--write-auto-sub)."""
    search = load(SEARCH)
    assert (search["_type"], search["extractor_key"], search["id"]) == ("playlist", "YoutubeSearch", "test")
    assert not_video_info(search) is not None
    d = decide(search)
    assert (d.keep, d.drop_reason, d.video_id, d.caption) == (False, NOT_VIDEO_INFO, None, None)

    (entry,) = search["entries"]
    e = decide(entry)
    assert e.summary() == {
        "video_id": "ugRc5jx80yg",
        "duration_s": 935.0,
        "view_count": 59156261,
        "caption": None,
        "keep": False,
        "drop_reason": NO_ENGLISH,
    }
    assert (e.channel, e.live_status) == ("Mark Rober", None)  # `is_live: null`, no `live_status` in 2020
