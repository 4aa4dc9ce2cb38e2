"""Cue-line text: strip WebVTT tags, read inline word timings, drop non-speech tags and speaker marks."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

# `<00:00:01.469>` (hours optional, as WebVTT allows) inside YouTube auto-caption lines.
_STAMP = re.compile(r"<(?:(\d+):)?(\d{1,2}):(\d{2})\.(\d{3})>")
# Any other tag: `<c>`, `</c>`, `<c.colorE5E5E5>`, `<v Speaker>`, `<i>`; a `<` cut off at the end of a
# truncated line is a dangling tag and goes too.
_TAG = re.compile(r"<[^<>]*>|<[^<>]*$")
# Non-speech: `[Music]`, `[Applause]`, and captioners' all-capital `(POETIC MUSIC)`, plus music notes.
_NON_SPEECH = re.compile(r"\[[^\[\]]*\]|\((?=[^()]*[A-Z])[^()a-z]*\)|[♪♫]+")
# Speaker-change marks: a leading dash on manual tracks, `>>` anywhere on ASR tracks.
_SPEAKER_DASH = re.compile(r"^\s*[-\u2010\u2013\u2014]+\s+")
_CHEVRONS = re.compile(r"(?:^|(?<=\s))>>+(?=\s|$)")


@dataclass(frozen=True)
class Word:
    """One spoken word and the time it starts (ms); auto tracks time every word."""

    start_ms: int
    text: str


def has_stamps(raw_line: str) -> bool:
    """True when the line carries inline word timings (the line being typed in a rolling track)."""
    return _STAMP.search(raw_line) is not None


def stamp_ms(match: re.Match[str]) -> int:
    hours, minutes, seconds, millis = match.groups()
    return ((int(hours or 0) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + int(millis)


def plain(raw_line: str) -> str:
    """The visible text of one raw cue line: tags out, entities decoded, whitespace collapsed."""
    text = _TAG.sub("", raw_line) if "<" in raw_line else raw_line
    # Unescape after stripping tags so that `&lt;b&gt;` stays visible text rather than becoming a tag.
    if "&" in text:
        text = html.unescape(text)
    return " ".join(text.split())


def timed_words(raw_line: str, line_start_ms: int) -> list[Word]:
    """Words of one raw line: text before the first stamp starts at the cue start, later text at its stamp."""
    words: list[Word] = []
    at = line_start_ms
    pos = 0
    for match in _STAMP.finditer(raw_line):
        words.extend(Word(at, w) for w in plain(raw_line[pos : match.start()]).split())
        at = max(stamp_ms(match), at)  # a stamp never moves time backwards
        pos = match.end()
    words.extend(Word(at, w) for w in plain(raw_line[pos:]).split())
    return words


def strip_speaker_marks(words: list[Word]) -> list[Word]:
    """Drop `>>` speaker-change tokens and a leading speaker dash: they are not spoken words."""
    out = [w for w in words if not _CHEVRONS.fullmatch(w.text)]
    if out and _SPEAKER_DASH.match(out[0].text + " "):
        out = out[1:]
    return out


def remove_non_speech(words: list[Word]) -> tuple[list[Word], int]:
    """Remove `[Music]`-style spans (possibly several words long); return the words kept and spans removed.

    Works on the joined text so that a span across words, `(POETIC MUSIC)`, is found, then maps the
    surviving characters back to words so that every kept word keeps its own start time.
    """
    text = " ".join(w.text for w in words)
    spans = [m.span() for m in _NON_SPEECH.finditer(text)]
    if not spans:
        return words, 0
    removed = [False] * len(text)
    for start, end in spans:
        for i in range(start, end):
            removed[i] = True
    kept: list[Word] = []
    offset = 0
    for word in words:
        rest = "".join(c for i, c in enumerate(word.text) if not removed[offset + i]).strip()
        if rest:
            kept.extend(Word(word.start_ms, piece) for piece in rest.split())
        offset += len(word.text) + 1
    return kept, len(spans)
