"""Parse a WebVTT caption track and clean it into non-overlapping segments (and word timings for ASR).

YouTube auto-caption tracks roll: each line is typed (with inline `<00:00:01.469>` word stamps) at the
bottom of a cue, shown again alone in a ~10 ms flash cue, then carried as the top line of the next cue.
Naive text triples the words. The cleaner (see DESIGN.md): skip cues <= 20 ms; strip tags per line; drop
blank lines; drop the leading lines already shown (auto tracks only: a manual track may repeat a line on
purpose); trim each segment's end to the next start.

A file is read in any encoding that can be told (see encoding.py) or refused with a reason, and its cue
times are checked in file order: a file holding two downloads restarts, which sorting would hide. A file
that is YouTube's timedtext XML under a .vtt name is read as such (see timedtext.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from tasks.captions.cuefile import decode_text, file_cues, header_language, read_cues
from tasks.captions.cuetext import plain
from tasks.captions.encoding import UndecodableError
from tasks.captions.kind import detect_kind
from tasks.captions.rolling import new_lines
from tasks.captions.segments import finish_segments
from tasks.captions.track import FLASH_MS, Cue, Kind, Segment, Track

# Where callers import the parser's names from: vtt.py is the entry point of the cleaner.
__all__ = [
    "FLASH_MS",
    "Cue",
    "Kind",
    "Segment",
    "Track",
    "detect_kind",
    "header_language",
    "parse_vtt",
    "read_cues",
]

log = logging.getLogger(__name__)

# A cue that starts this much before one above it in the file starts a second timeline (two downloads in
# one file). Real tracks never step back more than 1 s: checked on 1,558 youtube-dl tracks (SOURCES.md).
JUMP_BACK_MS = 5_000


def first_jump_back(cues: Sequence[Cue]) -> tuple[int, int] | None:
    """(from_ms, to_ms) where cue times, in file order, first go back more than JUMP_BACK_MS; else None."""
    latest: int | None = None
    for cue in cues:
        if not any(plain(line) for line in cue.lines):
            continue
        if latest is not None and cue.start_ms < latest - JUMP_BACK_MS:
            return latest, cue.start_ms
        latest = cue.start_ms if latest is None else max(latest, cue.start_ms)
    return None


def parse_vtt(
    data: bytes | str,
    *,
    kind: Kind | None = None,
    language: str | None = None,
    keep_non_speech: bool = False,
) -> Track:
    """Parse and clean a track. `kind`/`language` come from the track key when known, else the file."""
    warnings: list[str] = []
    try:
        text = decode_text(data, warnings) if isinstance(data, bytes) else data
    except UndecodableError as exc:
        return Track(
            language=language, kind=kind or "manual", segments=[], warnings=[str(exc)], refused=str(exc)
        )
    in_file_order, metadata = file_cues(text, warnings)
    cues = sorted(in_file_order, key=lambda c: c.start_ms)  # stable: equal starts keep file order
    track_kind: Kind = kind or detect_kind(cues)
    pieces = new_lines(cues, auto=track_kind == "auto")
    segments, words, dropped = finish_segments(pieces, keep_non_speech=keep_non_speech)
    for warning in warnings:
        log.debug("vtt: %s", warning)  # callers decide how loud: Track.warnings carries them
    starts = [c.start_ms for c in cues if any(plain(line) for line in c.lines)]
    return Track(
        language=language or header_language(metadata),
        kind=track_kind,
        segments=segments,
        words=words if track_kind == "auto" else [],
        dropped_tags=dropped,
        warnings=warnings,
        jump_back=first_jump_back(in_file_order),
        last_start_ms=max(starts) if starts else None,
    )
