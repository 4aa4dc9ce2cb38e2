"""Repairs of cue blocks that real caption files get wrong and webvtt-py reads silently wrong."""

from __future__ import annotations

import re
from collections.abc import Sequence

from tasks.captions.cuetext import plain

# A cue timing line, as webvtt-py reads one (hours optional, short fields, a comma as SRT writes it).
_TIMING_LINE = re.compile(r"^\s*(?:\d+:)?\d{1,2}:\d{1,2}[.,]\d{1,3}\s*-->")
# Blocks that are never a cue's text: a comment, or a style or region definition.
_NOT_TEXT_BLOCK = re.compile(r"^(?:NOTE|STYLE|REGION)(?:[ \t]|$)")
# A whole timing line met as text, "00:43:00,000 --> 00:00:46,000" (its arrow served as `--&gt;`).
_TIMING_TEXT = re.compile(
    r"((?:\d+:)?\d{1,2}:\d{1,2}[.,]\d{1,3})\s*-->\s*((?:\d+:)?\d{1,2}:\d{1,2}[.,]\d{1,3})(?:\s.*)?"
)


def rejoin_detached_text(text: str) -> tuple[str, int]:
    """`text` with each cue whose text is set off from its timing line by blank lines joined to that text,
    and how many were joined.

    webvtt-py, as the WebVTT spec, ends a cue at its first blank line and drops the text block after it,
    without a word. Real files have such cues: a French broadcast track (webvtt-py issue #46, 2023), and
    YouTube ASR tracks whose whitespace-only lines were lost in a copy (an editor or a paste strips them),
    where the first cue's " " line above its typed words becomes a blank one (sandflow/ttconv issue #439,
    2025): read as the spec says, that text was lost or, carried on the next cue, read seconds late. The
    block after such a cue is its text unless it is a cue of its own (it holds a timing line) or a comment,
    style or region block.
    """
    lines = text.split("\n")
    out: list[str] = []
    joined = 0
    i = 0
    while i < len(lines):
        out.append(lines[i])
        i += 1
        if not _TIMING_LINE.match(out[-1]):
            continue
        start = i
        while start < len(lines) and lines[start] == "":
            start += 1
        if start == i or start == len(lines):
            continue  # the text follows its timing line, or nothing follows
        end = start
        while end < len(lines) and lines[end] != "":
            end += 1
        block = lines[start:end]
        if _NOT_TEXT_BLOCK.match(block[0]) or any("-->" in line for line in block):
            continue
        out.extend(block)
        i = end
        joined += 1
    return "\n".join(out), joined


def split_swallowed_entries(
    start_ms: int, end_ms: int, lines: Sequence[str]
) -> tuple[list[tuple[int, int, tuple[str, ...]]], int]:
    """A cue as (start_ms, end_ms, lines) pieces without the number and timing lines of the subtitle entries
    it swallowed, and how many timing lines there were.

    An SRT file uploaded to YouTube with a blank line missing between two entries becomes one cue holding
    the next entry's number and timing as text; YouTube serves it so, and both lines were read as spoken
    words: "parameters of / 109 / 00:06:46,760 --&gt; 00:06:50,470 / our functions" in 6 places of 5 of the
    1,498 tracks of xy2401/local-youtube-vtt, "GEOINŽENIRING / 24 / 00:43:00,000 --&gt; 00:00:46,000" in a
    Slovenian track (yt-dlp issue #716). An entry whose own times are sound (from the cue's start on, ending
    after they start) becomes a piece of its own; otherwise (43 minutes typed for 43 seconds) its words stay
    in the piece before.
    """
    if not any("--" in line for line in lines):  # every timing line has its arrow; almost no cue does
        return [(start_ms, end_ms, tuple(lines))], 0
    pieces: list[tuple[int, int, list[str]]] = [(start_ms, end_ms, [])]
    found = 0
    for line in lines:
        match = _TIMING_TEXT.fullmatch(plain(line))
        if match is None:
            pieces[-1][2].append(line)
            continue
        found += 1
        above = pieces[-1][2]
        if above and plain(above[-1]).isdigit():
            above.pop()  # the entry's number, just above its timing
        own_start, own_end = _ms(match.group(1)), _ms(match.group(2))
        if pieces[-1][0] <= own_start < own_end:
            pieces.append((own_start, own_end, []))
    return [(s, e, tuple(text)) for s, e, text in pieces], found


def _ms(stamp: str) -> int:
    """Milliseconds of "00:06:46,760", "06:46.760" or "1:02:03.5"."""
    clock, fraction = re.split(r"[.,]", stamp)
    seconds = 0
    for part in clock.split(":"):
        seconds = seconds * 60 + int(part)
    return seconds * 1000 + int(fraction.ljust(3, "0")[:3])
