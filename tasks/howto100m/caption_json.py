"""Stream caption.json / raw_caption.json (one object: video id -> {start, end, text}) one video at a time.

The released caption.json is several GB; `json.load` would hold all of it (and its Python objects, about
ten times the bytes) in memory. We read it in chunks and decode one video's entry at a time with the
standard library's C decoder, which also accepts the `NaN` tokens Python's `json.dump` writes for float
NaN (ijson, the usual streaming parser, rejects them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

CHUNK_CHARS = 1 << 20
# One video's entry is a few KB (the longest videos a few MB); anything past this is a broken file.
MAX_ENTRY_CHARS = 256 << 20
_WHITESPACE = " \t\n\r"


class CaptionFileError(ValueError):
    """The file is not one JSON object of video entries; the message says where it broke."""


class _Reader:
    """A text buffer over a file that grows on demand, with the offset of its start in the file."""

    def __init__(self, handle: IO[str], chunk: int) -> None:
        self.handle, self.chunk = handle, chunk
        self.buf, self.pos, self.offset, self.eof = "", 0, 0, False

    def more(self, at_least: int = 0) -> bool:
        """Read more text (keeping what is not consumed yet); False once the file has ended."""
        if self.eof:
            return False
        self.offset += self.pos
        self.buf = self.buf[self.pos :]
        self.pos = 0
        try:
            data = self.handle.read(max(self.chunk, at_least))
        except UnicodeDecodeError as exc:
            where = self.offset + len(self.buf)  # the text read so far decoded; the bad byte is past it
            after = f" after character {where}" if where else ""
            raise CaptionFileError(f"not UTF-8 text{after} ({exc.reason})") from None
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def peek(self) -> str:
        """The next character that is not whitespace ('' at the end of the file)."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _WHITESPACE:
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return ""

    def expect(self, chars: str) -> str:
        found = self.peek()
        if not found or found not in chars:
            shown = repr(found) if found else "end of file"
            where = self.offset + self.pos
            raise CaptionFileError(f"character {where}: expected {' or '.join(chars)}, got {shown}")
        self.pos += 1
        return found

    def value(self, decoder: json.JSONDecoder) -> Any:
        """Decode the JSON value at the cursor, reading more while it is cut off by the buffer's end."""
        self.peek()
        want = self.chunk
        while True:
            try:
                value, end = decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                # A value cut by the buffer's end fails like a broken one: read more (doubling, so a
                # long entry costs linear time) until the file ends or the entry is absurdly long.
                where = self.offset + exc.pos
                if len(self.buf) - self.pos > MAX_ENTRY_CHARS or not self.more(want):
                    raise CaptionFileError(f"character {where}: {exc.msg}") from None
                want *= 2
                continue
            except ValueError as exc:  # an integer past Python's 4,300-digit conversion limit
                reason = str(exc).split(";")[0]
                raise CaptionFileError(f"character {self.offset + self.pos}: {reason}") from None
            except RecursionError:  # arrays in arrays some thousands deep: the C decoder's stack runs out
                raise CaptionFileError(
                    f"character {self.offset + self.pos}: a value nested too deeply to be a caption entry"
                ) from None
            self.pos = end
            return value


def iter_entries(handle: IO[str], chunk: int = CHUNK_CHARS) -> Iterator[tuple[str, Any]]:
    """(video id, entry) for each member of the top-level object, in file order, without loading it whole."""
    reader = _Reader(handle, chunk)
    decoder = json.JSONDecoder()
    reader.expect("{")
    if reader.peek() == "}":
        reader.pos += 1
    else:
        while True:
            if reader.peek() != '"':
                reader.expect('"')
            key = reader.value(decoder)
            reader.expect(":")
            yield key, reader.value(decoder)
            if reader.expect(",}") == "}":
                break
    if reader.peek():
        raise CaptionFileError(f"character {reader.offset + reader.pos}: data after the top-level object")


def open_captions(path: str) -> IO[str]:
    """The caption file as text (UTF-8, no newline translation: JSON strings carry their own escapes)."""
    return open(path, encoding="utf-8", newline="")
