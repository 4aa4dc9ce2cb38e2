"""The cleaner on real YouTube caption files: exact text, invariants, and word counts vs naive parsing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tasks.captions.cuetext import has_stamps, plain
from tasks.captions.vtt import FLASH_MS, Track, parse_vtt, read_cues

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "vtt"
ALL = sorted(FIXTURES.glob("*.vtt"))


def load(name: str) -> Track:
    return parse_vtt((FIXTURES / name).read_bytes())


def assert_clean(track: Track) -> None:
    """The acceptance invariants: sorted, non-overlapping, no flash segments, no repeated neighbours."""
    segs = track.segments
    for s in segs:
        assert s.end_ms - s.start_ms > FLASH_MS, s
        assert s.text == s.text.strip() and s.text
        # No tag or stamp left (a decoded "&lt;" is text: "2 < 3" in the styled fixture).
        assert not re.search(r"</?[A-Za-z][\w.]*>|<\d\d:", s.text) and "&gt;" not in s.text
    for a, b in zip(segs, segs[1:], strict=False):
        assert a.start_ms < b.start_ms
        assert a.end_ms <= b.start_ms
        # A repeated neighbour is a rolling track read twice; on a manual track a line can be said twice
        # in a row (a crowd's chant, "("Résistance !...")", two cues apart in a real French track).
        assert a.text != b.text or track.kind == "manual"
    if track.kind == "auto":
        assert [w.text for w in track.words] == " ".join(s.text for s in segs).split()
        starts = [w.start_ms for w in track.words]
        assert starts == sorted(starts)


def test_fixture_set_is_complete() -> None:
    assert len(ALL) >= 10
    assert (FIXTURES / "SOURCES.md").exists()
    listed = (FIXTURES / "SOURCES.md").read_text()
    for path in ALL:
        assert f"`{path.name}`" in listed, f"{path.name} has no origin in SOURCES.md"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_fixture_is_clean(path: Path) -> None:
    assert_clean(parse_vtt(path.read_bytes()))


def test_current_rolling_track_exact() -> None:
    track = load("rolling_current.en.vtt")
    assert track.kind == "auto" and track.language == "en"
    assert [(s.start_ms, s.end_ms, s.text) for s in track.segments[:2]] == [
        (80, 1309, "when I started working on embedded"),
        (1319, 3389, "systems over 10 years ago the developer"),
    ]
    assert track.segments[-1].text == "hardware and working in"
    assert len(track.segments) == 7
    # First word at the cue start, later ones at their inline stamps.
    assert [(w.start_ms, w.text) for w in track.words[:3]] == [(80, "when"), (199, "I"), (280, "started")]


@pytest.mark.parametrize(
    "name",
    [
        "rolling_current.en.vtt",
        "rolling_lowercase_2019.en.vtt",
        "rolling_punctuated.pt.vtt",
        "rolling_speaker_marks.en.vtt",
    ],
)
def test_rolling_word_count_matches_spoken_and_naive_triples(name: str) -> None:
    """Every spoken line is typed once with inline stamps (all lines here have several words): that is an
    independent count of the words spoken."""
    cues, _ = read_cues((FIXTURES / name).read_bytes(), [])
    # `>>` marks a change of speaker: it is not a spoken word.
    spoken = sum(
        1
        for c in cues
        for line in c.lines
        if has_stamps(line)
        for token in plain(line).split()
        if token != ">>"
    )
    naive = sum(len(plain(line).split()) for c in cues for line in c.lines)
    track = load(name)
    assert abs(track.n_words - spoken) <= 0.01 * spoken
    assert naive >= 2 * track.n_words  # what naive parsing would have produced


def test_legacy_colour_tag_track_exact() -> None:
    track = load("rolling_2016_colour_tags.en.vtt")
    assert [s.text for s in track.segments] == [
        "the man who inspired the",
        "character Gordon Gekko Asher",
        "edelman recently had an",
        "interview with CNBC and he",
        "talked about who he believed",
        "would be the best candidate for",
        "our economy now this is an",
        "interesting endorsement",
    ]


def test_youtube_dl_file_missing_blank_line() -> None:
    track = load("youtube_dl_style_header.en.vtt")
    assert [s.text for s in track.segments] == ["yeah", "what", "this will happen is I'm telling"]
    assert track.segments[0].start_ms == 4 * 60_000 + 46_070


def test_overlapping_old_asr_trims_and_drops_music() -> None:
    track = load("overlapping_2017_guardian.en.vtt")
    assert [(s.start_ms, s.end_ms, s.text) for s in track.segments] == [
        (2240, 4950, "after Trump's election America is"),
        (4950, 8690, "bracing itself for conflict"),
    ]
    assert track.dropped_tags == 1
    kept = parse_vtt((FIXTURES / "overlapping_2017_guardian.en.vtt").read_bytes(), keep_non_speech=True)
    assert kept.segments[0].text == "[Music]" and kept.dropped_tags == 0


def test_manual_track_lines_joined_not_deduplicated() -> None:
    track = load("manual_wrapped_crashcourse.en.vtt")
    assert track.kind == "manual" and track.words == []
    assert track.segments[0].text == "Hi I’m John Green and this is Crash Course European History."
    assert track.segments[6].text == "So, population was rising in 18th century"  # [Intro] dropped
    assert track.dropped_tags == 1
    assert track.language is None  # no Language: header, no track key given
    assert (
        parse_vtt((FIXTURES / "manual_wrapped_crashcourse.en.vtt").read_bytes(), language="en").language
        == "en"
    )


def test_non_speech_only_track_is_empty_but_counted() -> None:
    track = load("manual_nonspeech_parens.en.vtt")
    assert track.segments == [] and track.dropped_tags == 6 and track.warnings == []


def test_non_english_track() -> None:
    track = load("rolling_punctuated.pt.vtt")
    assert track.language == "pt"
    assert track.segments[2].text == "elétrica aí na sua casa? Eh, essas"


def test_truncated_file_reads_what_it_can() -> None:
    track = load("truncated_timing.en.vtt")
    assert [s.text for s in track.segments] == ["this caption is bad"]


def test_punctuated_track_with_speaker_marks_and_a_missing_flash_cue() -> None:
    track = load("rolling_speaker_marks.en.vtt")
    assert [s.text for s in track.segments] == [
        "Okay. Are we streaming now?",
        "I think we might be streaming. You want",
        "to double check that, Victor?",
    ]
    assert track.words[5].text == "I" and track.words[5].start_ms == 2879
