"""A caption file's bytes to cues in file order and its header lines: WebVTT through webvtt-py and the
repairs of cueblocks.py, or YouTube's timedtext XML (timedtext.py), whatever its name says."""

from __future__ import annotations

import re
from collections.abc import Sequence

import webvtt

from tasks.captions.cueblocks import rejoin_detached_text, split_swallowed_entries
from tasks.captions.encoding import UndecodableError, decode_caption_bytes
from tasks.captions.timedtext import TimedTextRefused, looks_like_timedtext, read_timedtext
from tasks.captions.track import Cue

_LANGUAGE = re.compile(r"^\s*Language:\s*(\S+)", re.IGNORECASE)


def read_cues(data: bytes | str, warnings: list[str]) -> tuple[list[Cue], list[str]]:
    """Cues (sorted by start) and header lines; whatever can be read is read, problems go to `warnings`."""
    if isinstance(data, bytes):
        try:
            data = decode_text(data, warnings)
        except UndecodableError as exc:
            warnings.append(str(exc))
            return [], []
    cues, metadata = file_cues(data, warnings)
    return sorted(cues, key=lambda c: c.start_ms), metadata  # stable: equal starts keep file order


def file_cues(text: str, warnings: list[str]) -> tuple[list[Cue], list[str]]:
    """Cues in file order and header lines."""
    # CR CR LF comes from files converted to Windows line ends twice; read as CR + CRLF it would put a
    # blank line (a cue break) after every line of text.
    text = text.replace("\x00", "").replace("\r\r\n", "\n").replace("\r\n", "\n").replace("\r", "\n")
    text = text.lstrip("\ufeff")
    if looks_like_timedtext(text):  # YouTube's XML served for a .vtt: same cues, another syntax
        try:
            timed = read_timedtext(text)
        except TimedTextRefused as exc:
            warnings.append(str(exc))
            return [], []
        warnings.extend(timed.warnings)
        return [Cue(*cue) for cue in timed.cues], []
    if not text.split("\n", 1)[0].startswith("WEBVTT"):
        warnings.append("missing WEBVTT header; reading cues anyway")
        text = "WEBVTT\n\n" + text
    text, rejoined = rejoin_detached_text(text)
    if rejoined:
        warnings.append(
            f"{rejoined} cue(s) with a blank line between timing and text; the text read as theirs"
        )
    try:
        parsed = webvtt.from_string(text)
    except Exception as exc:  # webvtt-py must never take the whole file down: report and read nothing
        warnings.append(f"unreadable WebVTT: {exc}")
        return [], []
    cues: list[Cue] = []
    bad = 0
    dropped_entries = 0
    for caption in parsed.captions:
        start, end = caption.start_time.in_milliseconds(), caption.end_time.in_milliseconds()
        if end < start:
            bad += 1
            continue
        pieces, swallowed = split_swallowed_entries(start, end, caption.lines)
        dropped_entries += swallowed
        cues.extend(Cue(*piece) for piece in pieces)
    # webvtt-py silently skips cues whose timing line it cannot read; count them for the warning.
    timing_lines = sum(1 for line in text.split("\n") if "-->" in line)
    skipped = max(0, timing_lines - len(parsed.captions)) + bad
    if skipped:
        warnings.append(f"{skipped} malformed cue block(s) skipped")
    if dropped_entries:
        warnings.append(
            f"{dropped_entries} timing line(s) inside cue text: entries swallowed by the cue before, not words"
        )
    return cues, list(parsed.metadata)


def decode_text(data: bytes, warnings: list[str]) -> str:
    decoded = decode_caption_bytes(data)
    if decoded.note:
        warnings.append(decoded.note)
    return decoded.text


def header_language(metadata: Sequence[str]) -> str | None:
    """The `Language:` header value, if any."""
    for line in metadata:
        match = _LANGUAGE.match(line)
        if match:
            return match.group(1)
    return None
