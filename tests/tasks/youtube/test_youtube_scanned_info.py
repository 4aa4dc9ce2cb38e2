"""Real info files found by scanning public repositories: a modern yt-dlp file with no caption tracks at all,
one under the view limit, a youtube-dl `ytsearch1:` result (a playlist) passed where a video is expected, and
a 2023 file whose only English track is the ASR (full caption maps), followed through the probe stage."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa
import pytest
from info_files import load_info as load
from youtube_fakes import client, clients

from storage.layout import DataRoot
from storage.schemas import get_schema
from tasks.search.config import SearchVideosConfig
from tasks.search.info_store import load_info
from tasks.search.probe import ProbeRun
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


@pytest.mark.parametrize("name", [NO_CAPTIONS, FEW_VIEWS, SEARCH, "yt-dlp-2023-06_auto-only_JjQDik3yNhA"])
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


AUTO_ONLY = "yt-dlp-2023-06_auto-only_JjQDik3yNhA"


def _query(url: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}


def test_2023_file_with_english_asr_only_keeps_the_original_track() -> None:
    """yt-dlp of June 2023 (`epoch` 1688045067) on an English talk: no manual track, 126 automatic keys:
    the English ASR as `en-orig` and `en` (`kind=asr&lang=en`, no `tlang`), every other key a `tlang=`
    translation of it. The original is chosen, and the columns are the file's own values."""
    info = load(AUTO_ONLY)
    assert info["subtitles"] == {} and info["requested_subtitles"] is None and info["language"] == "en"
    auto = info["automatic_captions"]
    for key in ("en", "en-orig"):
        assert {(_query(f["url"])["kind"], _query(f["url"])["lang"]) for f in auto[key]} == {("asr", "en")}
        assert not any("tlang" in _query(f["url"]) for f in auto[key])
    assert {_query(f["url"])["tlang"] for f in auto["de"]} == {"de"}
    d = decide(info)
    assert d.summary() == {
        "video_id": "JjQDik3yNhA",
        "duration_s": 968.0,
        "view_count": 263388,
        "caption": {"lang": "en-orig", "kind": "auto"},
        "keep": True,
        "drop_reason": None,
    }
    assert (d.title, d.channel, d.upload_date, d.live_status) == (
        "This is Why Nintendo Shutdown the Miiverse",
        "Mental Outlaw",
        "20220805",
        "not_live",
    )
    # Without `en-orig` (older yt-dlp) its `en` twin is the same original; without either, the
    # translations of the English ASR into other languages are never taken, and nothing is "translated".
    del auto["en-orig"]
    assert decide(info).summary()["caption"] == {"lang": "en", "kind": "auto"}
    del auto["en"]
    assert (decide(info).drop_reason, caption_state(info)) == (NO_ENGLISH, CAPTIONS_NONE)


def test_2023_auto_only_file_becomes_a_videos_row_and_a_small_kept_info(tmp_path: Path) -> None:
    """The probe stage end to end on the real file: the `videos` row carries the decision's columns and
    builds with the schema, and the kept info file holds only the English and original auto tracks."""
    info = load(AUTO_ONLY)
    vid = info["id"]
    c, _ = client({f"https://www.youtube.com/watch?v={vid}": [info]})
    plan = {"shard": 0, "crawl_id": "crawl-0000", "videos": [{"video_id": vid, "task_id": "t", "rank": 3}]}
    (row,) = ProbeRun(DataRoot.from_any(tmp_path), SearchVideosConfig(), plan, clients(c)).run(None)
    assert pa.Table.from_pylist([row], schema=get_schema("videos").schema).num_rows == 1
    assert {k: row[k] for k in ("video_id", "rank", "title", "channel", "upload_date", "duration_s")} == {
        "video_id": vid,
        "rank": 3,
        "title": "This is Why Nintendo Shutdown the Miiverse",
        "channel": "Mental Outlaw",
        "upload_date": "20220805",
        "duration_s": 968.0,
    }
    assert (row["view_count"], row["live_status"], row["caption_lang"], row["caption_kind"]) == (
        263388,
        "not_live",
        "en-orig",
        "auto",
    )
    assert (row["keep"], row["drop_reason"], row["status"], row["info_path"]) == (
        True,
        None,
        "ok",
        f"info/{vid}.info.json",
    )
    kept = load_info(DataRoot.from_any(tmp_path), vid)
    assert kept is not None and set(kept["automatic_captions"]) == {"en", "en-orig"}
    assert decide(kept) == decide(info)
