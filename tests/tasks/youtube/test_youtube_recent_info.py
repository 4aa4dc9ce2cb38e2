"""Real yt-dlp info files of late 2025 (HLS caption tracks, no `en-orig`) and of a live-stream recording."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from info_files import load_info as load

from tasks.youtube.decision import LIVE, NO_ENGLISH, TRANSLATED_ONLY, caption_state, choose_caption, decide
from tasks.youtube.sanitize import info_problem, sanitize_info
from tasks.youtube.subtitles import has_track

ZOO = "yt-dlp-2025-11_jNQXAC9IVRw"
RICK = "yt-dlp-2025-11_dQw4w9WgXcQ"
WAS_LIVE = "yt-dlp-2022-06-was-live_gogEJyoSB9s"


def query(url: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}


def tts_params(url: str) -> dict[str, str]:
    """The timedtext query an HLS caption manifest carries in its path (`/tts_params/caps%3Dasr%26...`)."""
    part = urlsplit(url).path.split("/tts_params/", 1)[1].split("/", 1)[0]
    return {k: v[-1] for k, v in parse_qs(unquote(part)).items()}


@pytest.mark.parametrize("name", [ZOO, RICK, WAS_LIVE])
def test_recent_files_are_storable_and_read_as_published(name: str) -> None:
    info = load(name)
    assert info_problem(info) is None
    assert info_problem(sanitize_info(info)) is None


def test_2025_file_without_en_orig_and_hls_only_auto_tracks() -> None:
    """yt-dlp 2025.11.12 on "Me at the zoo": `media_type`, `_format_sort_fields`, manual tracks with
    `name`/`impersonate`/`__yt_dlp_client`, and `automatic_captions` holding only `en` and `de` as HLS
    `hls_timedtext_playlist` manifests (`protocol: m3u8_native`, no `name`, no `en-orig`)."""
    info = load(ZOO)
    assert info["media_type"] == "video" and "en-orig" not in info["automatic_captions"]
    d = decide(info)
    assert d.summary() == {
        "video_id": "jNQXAC9IVRw",
        "duration_s": 19.0,
        "view_count": 375826400,
        "caption": {"lang": "en", "kind": "manual"},
        "keep": True,
        "drop_reason": None,
    }
    assert (d.title, d.channel, d.upload_date, d.live_status) == (
        "Me at the zoo",
        "jawed",
        "20050424",
        "not_live",
    )
    manual = info["subtitles"]["en"][0]
    assert manual["name"] == "English"
    assert query(manual["url"])["lang"] == "en" and "kind" not in query(manual["url"])
    assert has_track(sanitize_info(info), "en", "manual")


def test_2025_hls_en_track_alone_is_the_english_original() -> None:
    """Without the manual tracks, the only English track is the HLS manifest: its timedtext parameters
    (in the URL path, not the query) ask for `caps=asr&lang=en` and no `tlang`, so it is no translation."""
    info = load(ZOO)
    info["subtitles"] = {}
    (hls,) = info["automatic_captions"]["en"]
    assert hls["protocol"] == "m3u8_native" and "name" not in hls
    params = tts_params(hls["url"])
    assert (params["caps"], params["lang"], "tlang" in params) == ("asr", "en", False)
    d = decide(info)
    assert (d.keep, d.summary()["caption"]) == (True, {"lang": "en", "kind": "auto"})
    kept = sanitize_info(info)
    assert list(kept["automatic_captions"]) == ["en"]  # the German one goes
    assert has_track(kept, "en", "auto")


def test_2025_file_with_hls_and_timedtext_tracks_under_one_key() -> None:
    """yt-dlp 2025.11.12 on an English video: the HLS manifests (one per manual language) and the
    timedtext tracks share keys; `ja` is an HLS manifest beside the English-to-Japanese translation."""
    info = load(RICK)
    auto = info["automatic_captions"]
    assert [t.get("protocol") for t in auto["ja"][:2]] == ["m3u8_native", None]
    assert query(auto["ja"][1]["url"])["tlang"] == "ja"
    d = decide(info)
    assert d.summary() == {
        "video_id": "dQw4w9WgXcQ",
        "duration_s": 213.0,
        "view_count": 1715079915,
        "caption": {"lang": "en", "kind": "manual"},
        "keep": True,
        "drop_reason": None,
    }
    assert d.channel == "Rick Astley" and d.live_status == "not_live"
    assert set(sanitize_info(info)["automatic_captions"]) == {"en", "en-orig"}


def test_2025_file_without_manual_tracks_takes_the_original_asr() -> None:
    info = load(RICK)
    info["subtitles"] = {}
    choice = choose_caption(info)
    assert choice is not None and (choice.lang, choice.kind) == ("en-orig", "auto")
    track = info["automatic_captions"]["en-orig"]
    assert {t["name"] for t in track} == {"English (Original)"}
    assert {(query(t["url"])["kind"], query(t["url"])["lang"]) for t in track} == {("asr", "en")}
    assert not any("tlang" in query(t["url"]) for t in track)
    # Without any English key left, the Japanese and German tracks are never taken.
    for key in ("en", "en-orig"):
        del info["automatic_captions"][key]
    assert decide(info).drop_reason == NO_ENGLISH


def test_live_stream_recording_is_dropped_though_it_has_english_asr() -> None:
    """yt-dlp 2022.6.29 on a recorded 2-hour stream: `live_status: was_live`, English ASR as `en-orig`,
    and only the live-chat replay under `subtitles` (`protocol: youtube_live_chat_replay`)."""
    info = load(WAS_LIVE)
    assert info["subtitles"]["live_chat"][0]["protocol"] == "youtube_live_chat_replay"
    d = decide(info)
    assert (d.video_id, d.live_status, d.duration_s, d.view_count) == (
        "gogEJyoSB9s",
        "was_live",
        7205.0,
        34083,
    )
    assert (d.keep, d.drop_reason) == (False, LIVE)
    assert d.caption is not None and (d.caption.lang, d.caption.kind) == ("en-orig", "auto")
    assert caption_state(info) == "auto"  # the live chat is no English track
    legacy = {k: v for k, v in info.items() if k != "live_status"}
    assert legacy["was_live"] is True and decide(legacy).drop_reason == LIVE


def test_an_hls_manifest_asking_for_a_translation_in_its_path_is_no_english_original() -> None:
    """The HLS manifests of 2025 carry their timedtext parameters in the URL path (`tts_params/...`), not
    the query: a translated one (`lang=de&tlang=en` there) must not pass for the English ASR track."""
    info = load(ZOO)
    info["subtitles"] = {}
    auto = info["automatic_captions"]
    (hls,) = auto["en"]
    assert "%26lang%3Den%26" in hls["url"]
    auto["en"] = [{**hls, "url": hls["url"].replace("%26lang%3Den%26", "%26lang%3Dde%26tlang%3Den%26")}]
    params = tts_params(auto["en"][0]["url"])
    assert (params["lang"], params["tlang"]) == ("de", "en") and "tlang" not in query(auto["en"][0]["url"])
    assert choose_caption(info) is None
    assert decide(info).drop_reason == TRANSLATED_ONLY
    # The real manifest (lang=en, no tlang) stays the English original.
    auto["en"] = [hls]
    assert decide(info).keep


def test_an_hls_manifest_under_subtitles_asking_for_asr_in_its_path_is_the_auto_track() -> None:
    """Old youtube-dl files could list the ASR track under `subtitles`, given away by `kind=asr` in its URL;
    an HLS manifest says so in its path (`tts_params/...kind%3Dasr...`), and is read the same way."""
    info = load(ZOO)
    (hls,) = info["automatic_captions"]["en"]
    asr = {**hls, "url": hls["url"].replace("caps%3Dasr%26", "caps%3Dasr%26kind%3Dasr%26")}
    assert tts_params(asr["url"])["kind"] == "asr" and "kind" not in query(asr["url"])
    info["subtitles"] = {"en": [asr]}
    choice = choose_caption(info)
    assert choice is not None and (choice.lang, choice.kind) == ("en", "auto")
    info["subtitles"] = {"en": [hls]}  # no kind=asr: a manual track
    choice = choose_caption(info)
    assert choice is not None and (choice.lang, choice.kind) == ("en", "manual")


def test_a_caption_url_that_does_not_parse_is_no_usable_track() -> None:
    """A URL `urlsplit` refuses ("Invalid IPv6 URL") can be neither read for its timedtext parameters nor
    downloaded: the manual track it stands for is skipped, and the real HLS `en` ASR track is taken instead."""
    info = load(ZOO)
    info["subtitles"]["en"] = [
        {**f, "url": f["url"].replace("https://www.", "https://[www.")} for f in info["subtitles"]["en"]
    ]
    choice = choose_caption(info)
    assert choice is not None and (choice.lang, choice.kind) == ("en", "auto")
    info["automatic_captions"]["en"] = [
        {**f, "url": "http://[::1/api/timedtext"} for f in info["automatic_captions"]["en"]
    ]
    assert choose_caption(info) is None and decide(info).drop_reason == NO_ENGLISH
