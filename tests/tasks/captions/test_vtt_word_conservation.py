"""Word conservation on real rolling ASR fixtures: every word typed in the file comes out once, in order.

In a rolling track each word is typed exactly once: on the bottom line of the cue where it first appears
(the line's first word at the cue start, later ones at their inline stamps); flash and hold cues end in a
blank line (or, cut short, hold only that line) and type nothing, and the top line of a cue re-shows a line typed before. The typed words are
read here from the raw text by those rules alone (no webvtt-py, no cuetext), so the check does not share
the cleaner's reading. The cleaner drops on purpose only `[Music]`-style notes and `>>` speaker marks.
Checked the same way on the 370 stamped English tracks of xy2401/local-youtube-vtt (SOURCES.md).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from tasks.captions.vtt import parse_vtt

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "vtt"
_TIMING = re.compile(r"^\s*[\d:.]+\s+-->\s+[\d:.]+")
_STAMP = re.compile(r"<(?:\d+:)?\d{1,2}:\d{2}\.\d{3}>")
_TAG = re.compile(r"<[^>]*>")
_NOTE = re.compile(r"\[[^\[\]]*\]")
STAMPED = sorted(p for p in FIXTURES.glob("*.vtt") if _STAMP.search(p.read_text(encoding="utf-8-sig")))


def cue_bodies(text: str) -> list[list[str]]:
    """The text lines of each cue: from a timing line to the next empty line or timing line. Empty lines
    straight after the timing line are skipped: a copy that lost its whitespace-only lines has one there."""
    bodies: list[list[str]] = []
    body: list[str] | None = None
    for line in text.replace("\r\n", "\n").split("\n"):
        if _TIMING.match(line):
            body = []
            bodies.append(body)
        elif line == "" and body:
            body = None
        elif line == "":
            continue
        elif body is not None:
            body.append(line)
    return bodies


def visible(line: str) -> str:
    return html.unescape(_TAG.sub("", line))


def typed_words(text: str) -> list[str]:
    """The words typed in a rolling track, in order, less the non-speech notes and speaker marks."""
    typed: list[str] = []
    for i, body in enumerate(b for b in cue_bodies(text) if any(visible(line).strip() for line in b)):
        if i == 0:
            # An excerpt may open on a line typed before it was cut: the first cue's upper lines count.
            typed += [line for line in body[:-1] if not _STAMP.search(line)]
        bottom = body[-1]
        if not visible(bottom).strip():
            continue  # a blank bottom line (flash or hold cue) types nothing
        if len(body) == 1 and typed and visible(bottom).split() == visible(typed[-1]).split():
            continue  # a flash cue cut before its blank line re-shows the line typed last
        typed.append(bottom)
    words = _NOTE.sub(" ", " ".join(visible(line) for line in typed)).split()
    return [w for w in words if not re.fullmatch(">>+", w)]


def test_rolling_fixtures_are_found() -> None:
    assert len(STAMPED) >= 12


@pytest.mark.parametrize("path", STAMPED, ids=lambda p: p.name)
def test_every_typed_word_comes_out_once_in_order(path: Path) -> None:
    track = parse_vtt(path.read_bytes())
    assert track.kind == "auto"
    said = [w.text for w in track.words]
    assert said == typed_words(path.read_text(encoding="utf-8-sig"))
    assert " ".join(s.text for s in track.segments).split() == said
    starts = [w.start_ms for w in track.words]
    assert starts == sorted(starts)
    for a, b in zip(track.segments, track.segments[1:], strict=False):
        assert a.start_ms < a.end_ms <= b.start_ms
