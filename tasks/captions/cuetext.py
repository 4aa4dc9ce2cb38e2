"""Cue-line text: strip WebVTT tags, decode entities, and read inline word timings into timed words."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

# `<00:00:01.469>` (hours optional, as WebVTT allows) inside YouTube auto-caption lines.
_STAMP = re.compile(r"<(?:(\d+):)?(\d{1,2}):(\d{2})\.(\d{3})>")
# Any other tag: `<c>`, `</c>`, `<c.colorE5E5E5>`, `<v Speaker>`, `<i>`; a `<` cut off at the end of a
# truncated line is a dangling tag and goes too.
_TAG = re.compile(r"<[^<>]*>|<[^<>]*$")
# WebVTT's own tags (c, i, b, u, v, lang, ruby, rt) and the HTML ones of SRT files (font, span).
_FORMAT_TAG = re.compile(r"</?(?:[ibuc]|v|lang|ruby|rt|font|span)(?:[\s.][^<>]*)?>", re.IGNORECASE)
# Seen in real manual tracks ("languages \u200b\u200broom"): Python's split() keeps them inside words.
# Zero-width (non-)joiners are left alone: they spell words in Persian and Indic scripts.
_INVISIBLE = {0x200B: " ", 0x2060: None, 0xFEFF: None, 0x00AD: None}
_HAS_INVISIBLE = re.compile("[\u200b\u2060\ufeff\u00ad]")


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
    return " ".join(_visible(raw_line).split())


def timed_words(raw_line: str, line_start_ms: int) -> list[Word]:
    """Words of one raw line: text before the first stamp starts at the cue start, later text at its stamp.

    The text between stamps is one running line: a piece that does not start with a space continues the
    word before it. Live-stream ASR stamps every few letters (`SC<t><c>RI</c><t><c>PT</c>...`); such a
    word starts at its first piece.
    """
    pieces: list[tuple[int, str]] = []
    at = line_start_ms
    pos = 0
    for match in _STAMP.finditer(raw_line):
        pieces.append((at, raw_line[pos : match.start()]))
        at = max(stamp_ms(match), at)  # a stamp never moves time backwards
        pos = match.end()
    pieces.append((at, raw_line[pos:]))
    words: list[Word] = []
    open_word = False  # the last word may go on in the next piece
    for start_ms, raw in pieces:
        text = _visible(raw)
        tokens = text.split()
        if tokens and open_word and not text[0].isspace():
            words[-1] = Word(words[-1].start_ms, words[-1].text + tokens.pop(0))
        words.extend(Word(start_ms, w) for w in tokens)
        if text:  # a piece that is only tags (`<c.colorE5E5E5>`) neither ends nor starts a word
            open_word = bool(words) and not text[-1].isspace()
    return words


def _visible(raw: str) -> str:
    """Tags out and entities decoded, whitespace kept (it tells where words end), invisible characters
    out: a zero-width space is where a word ends, a word joiner or soft hyphen is nothing."""
    text = _TAG.sub("", raw) if "<" in raw else raw
    # Unescape after stripping tags, so that `2 &lt; 3` stays visible text. A formatting tag that comes out
    # of the entities is a captioner's italics typed as text (`&lt;i&gt;argent qui tinte&lt;/i&gt;`, in
    # real manual tracks): never a spoken word, so it goes too.
    if "&" in text:
        text = html.unescape(text)
        text = _FORMAT_TAG.sub("", text) if "<" in text else text
    return text.translate(_INVISIBLE) if _HAS_INVISIBLE.search(text) else text
