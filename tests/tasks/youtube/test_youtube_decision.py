"""The keep/drop decision on real yt-dlp / youtube-dl info dicts and on the caption edge cases."""

from __future__ import annotations

import copy

import pytest
from info_files import load_info as load

from tasks.captions.stage import vtt_relpath
from tasks.youtube.decision import (
    Limits,
    caption_state,
    choose_caption,
    decide,
    prefilter_reason,
    recorded_caption_state,
)

ASR = "https://www.youtube.com/api/timedtext?v=QW3-5OuWn4M&caps=asr&xoaf=5&hl=en&key=yt8&kind=asr&lang={lang}&fmt=vtt"


@pytest.fixture
def recent() -> dict:
    return load("yt-dlp-2023_QW3-5OuWn4M")


@pytest.fixture
def old() -> dict:
    return load("youtube-dl-2018_by0e4didQpM")


def track(url: str) -> list[dict]:
    return [
        {"ext": "vtt", "url": url, "name": "English"},
        {"ext": "json3", "url": url.replace("vtt", "json3")},
    ]


def test_recent_ytdlp_file_with_english_asr_is_kept(recent: dict) -> None:
    d = decide(recent)
    assert d.summary() == {
        "video_id": "QW3-5OuWn4M",
        "duration_s": 122.0,
        "view_count": 116,
        "caption": {"lang": "en", "kind": "auto"},
        "keep": True,
        "drop_reason": None,
    }
    assert d.channel == "King Fish Media" and d.live_status == "not_live"


def test_old_youtube_dl_file_without_captions_is_dropped(old: dict) -> None:
    d = decide(old)
    assert (d.keep, d.drop_reason, d.caption) == (False, "no_english_captions", None)
    # youtube-dl had no `channel`: the uploader stands in; `is_live: null` is not live.
    assert d.channel == "Little Baby Bum - Nursery Rhymes & Kids Songs"
    assert d.live_status is None and d.duration_s == 116.0 and d.view_count == 1008007


def test_old_file_missing_automatic_captions_key_entirely(old: dict) -> None:
    del old["automatic_captions"]
    old["subtitles"] = {"en": track("https://www.youtube.com/api/timedtext?lang=en&v=by0e4didQpM&fmt=vtt")}
    assert choose_caption(old) is not None and choose_caption(old).kind == "manual"  # type: ignore[union-attr]


def test_original_english_asr_is_chosen_over_translation(recent: dict) -> None:
    recent["subtitles"] = {}
    recent["automatic_captions"] = {
        "en": track(ASR.format(lang="de") + "&tlang=en"),
        "en-orig": track(ASR.format(lang="en")),
        "de": track(ASR.format(lang="de")),
    }
    assert decide(recent).summary()["caption"] == {"lang": "en-orig", "kind": "auto"}


def test_a_regional_english_original_is_chosen_over_its_tlang_en_copy(recent: dict) -> None:
    """Audio whose ASR track is tagged `en-US`: yt-dlp lists it as `en-US-orig`, and as `en` the same track
    with `tlang=en` (a same-language translation, which yt-dlp's code says returns damaged subtitles)."""
    recent["subtitles"] = {}
    recent["automatic_captions"] = {
        "en": track(ASR.format(lang="en-US") + "&tlang=en"),
        "en-US-orig": track(ASR.format(lang="en-US")),
        "de": track(ASR.format(lang="en-US") + "&tlang=de"),
    }
    assert decide(recent).summary()["caption"] == {"lang": "en-US-orig", "kind": "auto"}


def test_only_translated_english_is_dropped_with_its_own_reason(recent: dict) -> None:
    recent["subtitles"] = {}
    recent["automatic_captions"] = {
        "en": track(ASR.format(lang="es") + "&tlang=en"),
        "es": track(ASR.format(lang="es")),
    }
    d = decide(recent)
    assert (d.keep, d.drop_reason, d.caption) == (False, "translated_captions_only", None)


def test_caption_state_from_a_probe_agrees_with_the_videos_row(recent: dict) -> None:
    """What a re-crawl's caption re-check compares: the same four states from info and from the row."""
    manual = track("https://www.youtube.com/api/timedtext?v=QW3-5OuWn4M&lang=en&fmt=vtt")
    variants = {
        "manual": ({"en": manual}, {"en": track(ASR.format(lang="en"))}),
        "auto": ({}, {"en-orig": track(ASR.format(lang="en"))}),
        "translated_only": ({}, {"en": track(ASR.format(lang="es") + "&tlang=en")}),
        "none": ({}, {"es": track(ASR.format(lang="es"))}),
    }
    for state, (subtitles, auto) in variants.items():
        info = {**recent, "subtitles": subtitles, "automatic_captions": auto}
        d = decide(info)
        assert caption_state(info) == state
        kind = d.caption.kind if d.caption else None
        assert recorded_caption_state(kind, d.drop_reason) == state


def test_english_asr_without_tlang_is_the_original(recent: dict) -> None:
    recent["subtitles"] = {}
    recent["automatic_captions"] = {"en": track(ASR.format(lang="en"))}
    assert decide(recent).summary()["caption"] == {"lang": "en", "kind": "auto"}


def test_youtube_dl_self_translation_lang_en_tlang_en_is_the_original(recent: dict) -> None:
    """youtube-dl (2021) listed English videos' ASR as `lang=en&tlang=en` (the URL below is verbatim one
    such real URL, signature parts left out): the original words, not a translation."""
    url = (
        "https://www.youtube.com/api/timedtext?v=PEMIxDjSRTQ&asr_langs=de,en,es,fr,it,ja,ko,nl,pt,ru"
        "&caps=asr&exp=xftt&xorp=true&xoaf=5&hl=en&ip=0.0.0.0&ipbits=0&expire=1619238985&sparams=ip,"
        "ipbits,expire,v,asr_langs,caps,exp,xorp,xoaf&key=yt8&kind=asr&lang=en&tlang=en&fmt=vtt"
    )
    recent["subtitles"] = {}
    recent["automatic_captions"] = {"en": track(url)}
    assert decide(recent).summary()["caption"] == {"lang": "en", "kind": "auto"}
    # Spanish audio translated to English stays a translation, whatever the case of the codes.
    recent["automatic_captions"] = {"en": track(url.replace("lang=en&tlang=en", "lang=ES&tlang=EN"))}
    assert decide(recent).summary()["caption"] is None


def test_manual_en_gb_only_is_kept_as_manual(recent: dict) -> None:
    recent["subtitles"] = {
        "en-GB": track("https://www.youtube.com/api/timedtext?v=QW3-5OuWn4M&lang=en-GB&fmt=vtt"),
        "live_chat": [{"ext": "json", "url": "https://www.youtube.com/live_chat_replay"}],
    }
    recent["automatic_captions"] = {}
    d = decide(recent)
    assert d.keep and d.summary()["caption"] == {"lang": "en-GB", "kind": "manual"}


def test_manual_track_beats_auto(recent: dict) -> None:
    recent["subtitles"] = {"en": track("https://www.youtube.com/api/timedtext?v=x&lang=en&fmt=vtt")}
    recent["automatic_captions"] = {"en-orig": track(ASR.format(lang="en"))}
    assert choose_caption(recent).kind == "manual"  # type: ignore[union-attr]


def test_no_captions_at_all(recent: dict) -> None:
    recent["subtitles"], recent["automatic_captions"] = {}, {}
    recent.pop("requested_subtitles")
    assert decide(recent).drop_reason == "no_english_captions"


def test_empty_track_lists_do_not_count(recent: dict) -> None:
    recent["subtitles"], recent["automatic_captions"] = {"en": []}, {"en-orig": []}
    assert decide(recent).drop_reason == "no_english_captions"


def test_missing_view_count_is_not_a_reason_to_drop(recent: dict) -> None:
    del recent["view_count"]
    d = decide(recent)
    assert d.keep and d.view_count is None


def test_limits_and_live(recent: dict) -> None:
    assert decide({**recent, "view_count": 99}).drop_reason == "too_few_views"
    assert decide({**recent, "duration": 2000.5}).drop_reason == "too_long"
    assert decide({**recent, "duration": 2000}).keep
    assert decide({**recent, "duration": None}).drop_reason == "unknown_duration"
    for status in ("is_live", "is_upcoming", "was_live", "post_live"):
        assert decide({**recent, "live_status": status}).drop_reason == "live_or_upcoming"
    legacy = copy.deepcopy(recent)
    del legacy["live_status"]
    legacy["is_live"] = True
    assert decide(legacy).drop_reason == "live_or_upcoming"
    assert decide({**recent, "view_count": 50}, Limits(min_views=10)).keep


def test_untrusted_id_and_types(recent: dict) -> None:
    assert decide({**recent, "id": "../../etc/passwd"}).drop_reason == "invalid_id"
    assert decide({**recent, "id": "x" * 2048}).video_id is None
    assert decide({**recent, "view_count": "many", "duration": True}).drop_reason == "unknown_duration"


def test_prefilter_on_flat_entries() -> None:
    limits = Limits()
    assert prefilter_reason(None, None, limits) is None
    assert prefilter_reason(2417, 5000, limits) == "too_long"
    assert prefilter_reason(300, 37, limits) == "too_few_views"
    assert prefilter_reason(300, 5000, limits, "is_upcoming") == "live_or_upcoming"


def test_asr_track_listed_under_subtitles_counts_as_auto(old: dict) -> None:
    old["subtitles"] = {
        "en": track("https://www.youtube.com/api/timedtext?v=by0e4didQpM&kind=asr&lang=en&fmt=vtt")
    }
    assert decide(old).summary()["caption"] == {"lang": "en", "kind": "auto"}


@pytest.fixture
def full_maps() -> dict:
    """A 2024 yt-dlp info with its caption maps as YouTube lists them: a manual `de`, and English ASR as
    `en-orig` and `en` beside machine translations ("English from German", `en-de`; `de-de`), the `de`
    ASR as an HLS timedtext playlist. Its id was made up by its publisher ("ABC123"): a real-looking id
    is put back so the id check passes."""
    info = load("yt-dlp-2024_pinchflat_example")
    assert decide(info).drop_reason == "invalid_id"
    info["id"] = "ABC123defgh"
    return info


def test_real_full_caption_maps_choose_the_original_english_asr(full_maps: dict) -> None:
    d = decide(full_maps)
    assert d.summary() == {
        "video_id": "ABC123defgh",
        "duration_s": 582.0,
        "view_count": 9973,
        "caption": {"lang": "en-orig", "kind": "auto"},
        "keep": True,
        "drop_reason": None,
    }
    assert caption_state(full_maps) == "auto"


def test_real_full_caption_maps_without_english_asr_have_only_translations(full_maps: dict) -> None:
    for key in ("en-orig", "en"):
        del full_maps["automatic_captions"][key]
    assert "en-de" in full_maps["automatic_captions"]  # English from German: a translation
    d = decide(full_maps)
    assert (d.keep, d.drop_reason, d.caption) == (False, "translated_captions_only", None)


JUNK_KEYS = ["en-/../x", "en-x\n", "en-GB/../../../etc", "en-\x00", "en-US x", "en-" + "x" * 40]


@pytest.mark.parametrize("junk", JUNK_KEYS)
def test_a_junk_english_manual_key_is_ignored_and_the_real_english_track_is_picked(junk: str) -> None:
    """A manual track listed under a key that is no language name would win over the auto track, and the
    captions stage (which names the .vtt file after the key) would then fail the video though the info
    offers a plain English original."""
    info = load("yt-dlp-2023-06_auto-only_JjQDik3yNhA")
    assert not info.get("subtitles")
    info["subtitles"] = {junk: copy.deepcopy(info["automatic_captions"]["en-orig"])}
    d = decide(info)
    assert (d.keep, d.summary()["caption"]) == (True, {"lang": "en-orig", "kind": "auto"})
    assert caption_state(info) == "auto"
    assert vtt_relpath(info["id"], d.caption.lang if d.caption else "")  # the stage takes the key


@pytest.mark.parametrize("junk", [f"{k}-orig" for k in JUNK_KEYS])
def test_a_junk_original_asr_key_is_ignored_for_the_plain_en_track(junk: str) -> None:
    info = load("yt-dlp-2025-11_jNQXAC9IVRw")
    info["subtitles"] = {}
    info["automatic_captions"][junk] = copy.deepcopy(info["automatic_captions"]["en"])
    assert decide(info).summary()["caption"] == {"lang": "en", "kind": "auto"}
