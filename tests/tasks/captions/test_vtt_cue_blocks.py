"""Cue blocks real files get wrong: text set off from its timing line by a blank line, rolling tracks that
lost their whitespace-only lines, a subtitle entry swallowed by the cue before (provenance in SOURCES.md)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tasks.captions.vtt import parse_vtt

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "vtt"
_STAMP = re.compile(r"<(?:\d+:)?\d{1,2}:\d{2}\.\d{3}>")
STAMPED = sorted(p for p in FIXTURES.glob("*.vtt") if _STAMP.search(p.read_text(encoding="utf-8-sig")))


def test_manual_cue_text_after_a_blank_line_is_read() -> None:
    """webvtt-py ends the cue at the blank line and drops the two lines after it, without a warning."""
    track = parse_vtt((FIXTURES / "manual_blank_after_timing_webvtt_py46_excerpt.fr.vtt").read_bytes())
    assert [(s.start_ms, s.end_ms, s.text) for s in track.segments] == [
        (2715640, 2716760, "Quelqu'un en a parlé ?"),
        (2716960, 2720600, "Haddock l'a vu sur le pont 4 et m'a demandé mon impression."),
        (2720920, 2722040, "Qui est Haddock ?"),
    ]
    assert any("blank line between timing and text" in w for w in track.warnings)


def test_asr_copy_without_whitespace_lines_keeps_the_first_line_and_its_times() -> None:
    """The first line was read only where the next cue carries it on top: 2 s late, its stamps lost."""
    track = parse_vtt((FIXTURES / "rolling_lost_blank_lines_ttconv439_excerpt.en.vtt").read_bytes())
    assert track.kind == "auto"
    assert [(s.start_ms, s.end_ms, s.text) for s in track.segments] == [
        (799, 2869, "hi everyone today we're going to be"),
        (2879, 4070, "modeling a basic"),
    ]
    assert [w.start_ms for w in track.words[:3]] == [799, 1040, 1920]


@pytest.mark.parametrize("path", STAMPED, ids=lambda p: p.name)
def test_rolling_track_without_its_whitespace_lines_reads_as_the_original(path: Path) -> None:
    """Editors, pastes and pre-commit hooks strip trailing spaces, which turns the " " lines of a rolling
    track into blank ones. Before, 11 of the 13 other real rolling fixtures read differently so: a first line lost
    or read late, and a hold cue ("line" over " ", 9 s) read as a line typed twice."""
    original = path.read_text(encoding="utf-8-sig")
    stripped = "\n".join(line.rstrip() for line in original.split("\n"))
    want, got = parse_vtt(original), parse_vtt(stripped)
    assert (got.kind, got.segments, got.words) == (want.kind, want.segments, want.words)


def test_a_blank_cue_before_a_comment_or_another_cue_stays_blank() -> None:
    text = (
        "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n\nNOTE a comment, not the cue's text\n\n"
        "00:00:03.000 --> 00:00:04.000\n\n2\n00:00:05.000 --> 00:00:06.000\nsaid once\n"
    )
    track = parse_vtt(text)
    assert [(s.start_ms, s.text) for s in track.segments] == [(5000, "said once")]
    assert not any("blank line between timing and text" in w for w in track.warnings)


def test_swallowed_subtitle_entries_are_read_apart_at_their_own_times() -> None:
    """YouTube serves an uploaded SRT entry whose blank separator line was missing as text of the cue before:
    "109" and "00:06:46,760 --> 00:06:50,470" came out as spoken words, the entry's words 3.7 s early."""
    track = parse_vtt((FIXTURES / "manual_swallowed_srt_entries_jdk8_mooc_excerpt.en.vtt").read_bytes())
    assert [(s.start_ms, s.end_ms, s.text) for s in track.segments][1:3] == [
        (403000, 406760, "because we only use names for the formal parameters of"),
        (406760, 410470, "our functions, and we can only assign"),
    ]
    assert [(s.start_ms, s.text) for s in track.segments][5:7] == [
        (458320, "when it comes to imperative code verses functional code."),
        (462110, "In imperative code the same name can be associated with different values;"),
    ]
    assert not any(c.isdigit() for s in track.segments for c in s.text)
    assert any("2 timing line(s) inside cue text" in w for w in track.warnings)


def test_a_swallowed_entry_with_impossible_times_stays_in_the_cue_before() -> None:
    """Its uploader typed 43 minutes for 43 seconds (00:43:00,000 --> 00:00:46,000): the words stay where
    they are, the number and timing go."""
    track = parse_vtt((FIXTURES / "manual_swallowed_srt_entry_ytdlp716_excerpt.sl.vtt").read_bytes())
    assert [(s.start_ms, s.text) for s in track.segments] == [(42000, "GEOINŽENIRING Posegi tako obsežni,")]
    assert any("timing line(s) inside cue text" in w for w in track.warnings)


@pytest.mark.parametrize(
    "lines",
    [
        ["24 hours later", "we check the dough"],
        ["the score was", "24", "to 12"],
        ["set the timer -- 10:30 is fine"],
    ],
)
def test_numbers_times_and_dashes_in_speech_stay(lines: list[str]) -> None:
    text = "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\n" + "\n".join(lines) + "\n"
    track = parse_vtt(text)
    assert [s.text for s in track.segments] == [" ".join(lines)]
    assert not track.warnings
