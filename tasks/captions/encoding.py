"""Caption file bytes to text: by byte-order mark, UTF-16 without one, UTF-8, Windows-1252, or a refusal.

YouTube serves UTF-8, but tracks also come from elsewhere (imports, files re-saved on Windows): Notepad's
"Unicode" is UTF-16 with a byte-order mark, older editors write Windows-1252 or Latin-1. Read as UTF-8
with replacement these became words full of U+FFFD. What cannot be told apart with confidence (another
single-byte code page, UTF-8 mixed with other bytes) is refused with a one-line reason, never guessed.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

# UTF-32 first: its little-endian mark starts with UTF-16's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
)
SNIFF_BYTES = 4096  # enough of the head (header and first cues) to see UTF-16's zero bytes
# In Western text read as Windows-1252 a few letters are accented (French ~4%); Cyrillic, Greek or CJK
# bytes read that way are accented letters almost throughout.
MAX_ACCENTED_SHARE = 0.25
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)
_CP1252_HOLES = frozenset(b"\x81\x8d\x8f\x90\x9d")  # bytes Windows-1252 leaves undefined


class UndecodableError(ValueError):
    """The bytes are in no text encoding we can tell with confidence; the message is one line."""


@dataclass(frozen=True)
class Decoded:
    text: str
    note: str | None = None  # how it was read when that was not plain UTF-8 (a warning for the track)


def decode_caption_bytes(data: bytes) -> Decoded:
    """The text of a caption file, and how it was read; raise UndecodableError rather than guess."""
    for bom, codec, name in _BOMS:
        if data.startswith(bom):
            note = None if codec == "utf-8" else f"read as {name} (byte-order mark)"
            return _strict(data[len(bom) :], codec, f"a {name} byte-order mark", note)
    utf16 = _utf16_without_bom(data[:SNIFF_BYTES])
    if utf16 is not None:
        return _strict(data, utf16, "the zero bytes of UTF-16", "read as UTF-16 without a byte-order mark")
    try:
        return Decoded(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        cut = _cut_tail(data, "utf-8", exc)
        if cut is not None:
            return cut
        first_bad = exc.start
    if _UTF8_MULTIBYTE.search(data):
        raise UndecodableError(
            f"mixed text encodings: UTF-8 with bytes that are not (first at byte {first_bad})"
        )
    text = "".join(chr(b) if b in _CP1252_HOLES else bytes([b]).decode("cp1252") for b in data)
    letters = [c for c in text if c.isalpha()]
    accented = sum(1 for c in letters if not c.isascii())
    if letters and accented > MAX_ACCENTED_SHARE * len(letters):
        raise UndecodableError(
            f"unknown text encoding: not UTF-8, and read as Windows-1252 {accented} of {len(letters)} "
            "letters would be accented"
        )
    return Decoded(text, "not UTF-8: read as Windows-1252 (Latin-1)")


def _strict(data: bytes, codec: str, evidence: str, note: str | None) -> Decoded:
    try:
        return Decoded(data.decode(codec), note)
    except UnicodeDecodeError as exc:
        cut = _cut_tail(data, codec, exc)
        if cut is not None:
            return cut
        raise UndecodableError(
            f"unknown text encoding: {evidence}, but byte {exc.start} is not {codec}"
        ) from None


def _cut_tail(data: bytes, codec: str, exc: UnicodeDecodeError) -> Decoded | None:
    """A file cut inside its last character (a download that stopped) keeps everything before it."""
    if exc.end != len(data) or len(data) - exc.start > 3:
        return None
    try:
        text = data[: exc.start].decode(codec)
    except UnicodeDecodeError:
        return None
    return Decoded(text, f"file cut inside its last character: {len(data) - exc.start} byte(s) dropped")


def _utf16_without_bom(head: bytes) -> str | None:
    """UTF-16 of mostly-ASCII text (the header, timings) has a zero in every other byte."""
    if len(head) < 8:
        return None
    even, odd = head[0::2], head[1::2]
    zeros_even, zeros_odd = even.count(0) / len(even), odd.count(0) / len(odd)
    if zeros_odd > 0.3 and zeros_even < 0.05:
        return "utf-16-le"
    if zeros_even > 0.3 and zeros_odd < 0.05:
        return "utf-16-be"
    return None
