"""Caption tracks in YouTube's real shapes: rolling ASR with 10 ms flash cues, manual, [Music], tlang."""

from __future__ import annotations

import io
import re
from pathlib import Path

import webvtt

from tasks.demo.videos import DemoVideo
from tasks.demo.world import World

HEADER = "WEBVTT\nKind: captions\nLanguage: {}\n\n"
TAG = re.compile(r"<[^>]+>")


def _cues(text: str) -> list[webvtt.Caption]:
    return list(webvtt.from_buffer(io.StringIO(text)).captions)


def _by_kind(world: World, kind: str) -> DemoVideo:
    return next(v for v in world.usable if v.captions == kind)


def _clean_auto(text: str) -> list[str]:
    """DESIGN.md's rule for rolling tracks: skip <= 20 ms cues, strip tags, drop repeated top lines."""
    words: list[str] = []
    last = None
    for cue in _cues(text):
        if cue.end_time.in_milliseconds() - cue.start_time.in_milliseconds() <= 20:
            continue
        for line in cue.raw_text.split("\n"):
            line = TAG.sub("", line).strip()
            if not line or line == last:
                continue
            words += line.split()
            last = line
    return words


def test_rolling_auto_track_has_youtubes_shape(demo_world: World) -> None:
    v = _by_kind(demo_world, "auto")
    text = v.caption_vtt(asr=True, lang="en", tlang=None)
    assert text is not None and text.startswith(HEADER.format("en"))
    cues = _cues(text)
    flashes = [c for c in cues if c.end_time.in_milliseconds() - c.start_time.in_milliseconds() == 10]
    typed = [c for c in cues if c not in flashes]
    assert len(flashes) == len(typed) >= 10
    assert all("align:start position:0%" in line for line in text.splitlines() if "-->" in line)
    assert re.search(r"^\w[^<\n]*<\d\d:\d\d:\d\d\.\d{3}><c> \S+</c>", text, re.M)  # inline word times
    # Each typed cue repeats the previous flash text as its top line, as the real rolling layout does.
    for flash, nxt in zip(flashes, typed[1:], strict=False):
        assert nxt.raw_text.split("\n")[0] == flash.raw_text.split("\n")[0]
    assert typed[0].raw_text.split("\n")[0] == " "  # nothing said yet: a one-space top line
    assert _clean_auto(text) == v.words
    naive = sum(len(TAG.sub("", c.raw_text).split()) for c in cues)
    assert naive > 2 * len(v.words)  # why naive parsing fails on these tracks


def test_music_intro_gives_music_and_whitespace_only_cues(demo_world: World) -> None:
    v = _by_kind(demo_world, "auto_music")
    text = v.caption_vtt(asr=True, lang="en", tlang=None)
    assert text is not None
    cues = _cues(text)
    assert cues[0].raw_text == " \n[Music]"
    assert cues[1].raw_text.strip() == "" and "\n" in cues[1].raw_text  # whitespace-only flash cue
    assert _clean_auto(text) == ["[Music]", *v.words]


def test_manual_track_wraps_plain_cues_over_two_lines(demo_world: World) -> None:
    v = _by_kind(demo_world, "manual")
    text = v.caption_vtt(asr=False, lang="en", tlang=None)
    assert text is not None and text.startswith(HEADER.format("en"))
    cues = _cues(text)
    assert "<c>" not in text and "align:" not in text
    assert sum(c.raw_text.count("\n") == 1 for c in cues) >= len(cues) // 2
    assert " ".join(c.text.replace("\n", " ") for c in cues).split() == v.words
    assert all(
        a.end_time.in_milliseconds() <= b.start_time.in_milliseconds()
        for a, b in zip(cues, cues[1:], strict=False)
    )
    assert v.caption_vtt(asr=True, lang="en", tlang=None) is None  # no ASR track offered


def test_non_english_video_offers_english_only_as_translation(demo_world: World) -> None:
    v = next(v for v in demo_world.videos if v.language != "en")
    subs, autos = v.tracks()
    english = [t for t in subs + autos if t.key == "en"]
    assert len(english) == 1 and english[0].tlang == "en" and english[0].asr
    original = v.caption_vtt(asr=True, lang=v.language, tlang=None)
    translated = v.caption_vtt(asr=True, lang=v.language, tlang="en")
    assert original is not None and f"Language: {v.language}" in original
    assert translated is not None and translated.startswith(HEADER.format("en")) and "<c>" not in translated
    assert " ".join(c.text for c in _cues(translated)).split() == [w.text for s in v.english for w in s.words]
    assert v.caption_vtt(asr=True, lang="en", tlang=None) is None


def test_videos_without_captions_offer_no_track(demo_world: World) -> None:
    v = next(v for v in demo_world.videos if v.captions == "none" and v.playable)
    assert v.tracks() == ([], [])
    assert v.caption_vtt(asr=True, lang="en", tlang=None) is None


def _shape(text: str, n: int = 12) -> list[tuple]:
    """Layout of the first n cues: (flash?, line count, top line blank?, inline stamps on the bottom?)."""
    out = []
    for cue in _cues(text)[:n]:
        lines = cue.raw_text.split("\n")
        flash = cue.end_time.in_milliseconds() - cue.start_time.in_milliseconds() == 10
        out.append((flash, len(lines), lines[0].strip() == "", "<c>" in lines[-1]))
    return out


def test_auto_track_layout_matches_a_real_youtube_track(demo_world: World) -> None:
    real = (Path(__file__).parents[2] / "fixtures" / "vtt" / "rolling_current.en.vtt").read_text()
    ours = _by_kind(demo_world, "auto").caption_vtt(asr=True, lang="en", tlang=None)
    assert ours is not None
    assert _shape(ours) == _shape(real)
    assert ours.splitlines()[:4] == real.splitlines()[:4]  # WEBVTT / Kind / Language / blank
