"""YouTube timedtext XML (srv1, srv2, srv3) read into WebVTT-style cues, for tracks saved under a .vtt name.

YouTube has answered a request for `fmt=vtt` with its own XML, served as `text/vtt`, and yt-dlp keeps it
under the .vtt name asked for; read as WebVTT it gave no cue. The three shapes, told by content:
srv1 `<transcript><text start="1.2" dur="3.4">` (seconds), srv2 `<timedtext><text t="1200" d="3400">` and
srv3 `<timedtext format="3"><body><p t="1200" d="3400">` (milliseconds). An ASR srv3 `<p>` holds its words
as `<s>` pieces, each `t` ms after the p's start (none on the first) and an `ac` confidence; its empty
`a="1"` lines only scroll the window. Each element becomes a cue in WebVTT's terms, so that one cleaner
reads both: the decoded text is a cue payload (YouTube's text may hold entities again, `&amp;#39;`, and
formatting tags, `&lt;i&gt;`), and an ASR piece gets an inline stamp, `<00:00:01.469>`, as a rolling
WebVTT line has.

Untrusted XML: a document type declaration (where entities are defined, for entity expansion or external
entities) is refused before anything is expanded; YouTube's timedtext never has one.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import NoReturn
from xml.parsers import expat

from tasks.captions.track import MAX_TIME_MS

# What opens a timedtext document: an XML declaration, or the root element of one of the shapes (a
# document type declaration in front, to be refused). An HTML error page (`<!DOCTYPE html>`) is not one.
_TIMEDTEXT_HEAD = re.compile(r"<\?xml[\s?]|<(?:!DOCTYPE\s+)?(?:transcript|timedtext)[\s>/]")
# A `<` that opens no tag is text ("I <3 it"): kept as the entity, so that the cleaner's tag stripping
# leaves it and its entity decoding gives it back.
_LONE_LT = re.compile(r"<(?![A-Za-z/])")


class TimedTextRefused(ValueError):
    """The document is not read at all; the message is one line."""


@dataclass
class TimedText:
    """The cues of a timedtext document in document order, as (start_ms, end_ms, payload lines)."""

    cues: list[tuple[int, int, tuple[str, ...]]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def looks_like_timedtext(text: str) -> bool:
    """Whether the (decoded) file is XML rather than WebVTT: its content says so, not its name."""
    return _TIMEDTEXT_HEAD.match(text.lstrip("\ufeff \t\n")) is not None


def read_timedtext(text: str) -> TimedText:
    """The cues of a srv1, srv2 or srv3 document; raise TimedTextRefused for hostile or broken XML."""
    root = _parse(text.lstrip())  # blank lines before the XML declaration would make it unreadable
    out = TimedText()
    if root.tag == "transcript":
        elements = list(root.iter("text"))
    elif root.tag == "timedtext":
        body = root.find("body")
        elements = list(body.iter("p")) if body is not None else list(root.iter("text"))
    else:
        raise TimedTextRefused(f"XML whose root is <{root.tag}>, not YouTube timedtext")
    timed: list[tuple[int, int | None, ET.Element]] = []
    bad = 0
    for element in elements:
        times = _times(element)
        if times is None:
            bad += 1
        else:
            timed.append((times[0], times[1], element))
    for i, (start, end, element) in enumerate(timed):
        payload = _payload(element, start)
        if not payload.strip():
            continue  # an srv3 `a="1"` line (a new line for the window), or an empty srv1 text
        if end is None:  # no duration: shown until the next element starts
            end = next((s for s, _, _ in timed[i + 1 :] if s > start), start)
        out.cues.append((start, end, tuple(payload.split("\n"))))
    if bad:
        out.warnings.append(f"{bad} timedtext element(s) without readable times skipped")
    return out


def _parse(text: str) -> ET.Element:
    """The element tree, from expat with every declaration handler refusing: no DTD, no entities."""
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()

    def refuse(*_: object) -> NoReturn:
        raise TimedTextRefused(
            "XML with a document type declaration refused (entity definitions, never in YouTube timedtext)"
        )

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(text, True)
    except expat.ExpatError as exc:
        raise TimedTextRefused(f"unreadable timedtext XML: {exc}") from None
    return builder.close()


def _times(element: ET.Element) -> tuple[int, int | None] | None:
    """(start_ms, end_ms or None when no duration is given) of an element; None when unreadable."""
    if "t" in element.attrib:
        start, duration = _ms(element.get("t"), 1), _ms(element.get("d"), 1)
    else:
        start, duration = _ms(element.get("start"), 1000), _ms(element.get("dur"), 1000)
    if start is None:
        return None
    return start, None if duration is None else start + duration


def _ms(value: str | None, per_unit: int) -> int | None:
    try:
        number = float(value) * per_unit if value is not None else math.nan
    except ValueError:
        return None
    # Past MAX_TIME_MS it is unreadable: t="1e30" made the captions shard fail to write, on every rerun.
    return round(number) if math.isfinite(number) and 0 <= number <= MAX_TIME_MS else None


def _payload(element: ET.Element, start_ms: int) -> str:
    """The element's text as a WebVTT cue payload: an ASR word piece (an `<s>` with a time offset or a
    confidence) opens with the stamp of its start; other children (style spans) are text alone."""
    parts = [_text(element.text)]
    for child in element:
        piece = _text("".join(child.itertext()))
        if child.tag == "s" and ("t" in child.attrib or "ac" in child.attrib):
            offset = _ms(child.get("t", "0"), 1) or 0
            piece = _stamp(start_ms + offset) + piece
        parts.append(piece)
        parts.append(_text(child.tail))
    return "".join(parts)


def _text(text: str | None) -> str:
    return _LONE_LT.sub("&lt;", text) if text else ""


def _stamp(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"<{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}>"
