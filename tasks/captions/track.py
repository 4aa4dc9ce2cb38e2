"""A caption track's records: the cues read from a file, the clean segments and the track they make."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tasks.captions.cuetext import Word
from tasks.captions.wordcount import count_words

Kind = Literal["auto", "manual"]
# No track runs this long (about 31,700 years): a caption time past it is unreadable, not one to keep, so
# a start plus a duration always fits the int64 milliseconds of the clips rows.
MAX_TIME_MS = 10**15
FLASH_MS = 20  # cues this short only re-show a finished line; a segment must be longer than this


@dataclass(frozen=True)
class Cue:
    """One parsed WebVTT cue: its times and raw payload lines (tags still in)."""

    start_ms: int
    end_ms: int
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Segment:
    """One clean caption line: what was said between start_ms and end_ms."""

    start_ms: int
    end_ms: int
    text: str


@dataclass
class Track:
    """A cleaned caption track."""

    language: str | None
    kind: Kind
    segments: list[Segment]
    words: list[Word] = field(default_factory=list)  # word timings, auto tracks only
    dropped_tags: int = 0
    warnings: list[str] = field(default_factory=list)
    refused: str | None = None  # why the file was not read at all (its encoding), one line
    jump_back: tuple[int, int] | None = None  # (from_ms, to_ms) of the first restart of the cue times
    last_start_ms: int | None = None  # the latest start of a cue with text

    @property
    def n_words(self) -> int:
        return sum(count_words(s.text) for s in self.segments)

    def summary(self) -> dict[str, object]:
        return {
            "language": self.language,
            "kind": self.kind,
            "segments": len(self.segments),
            "words": self.n_words,
            "dropped_tags": self.dropped_tags,
        }
