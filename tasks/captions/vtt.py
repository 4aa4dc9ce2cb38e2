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
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import webvtt

from tasks.captions.cueblocks import rejoin_detached_text, split_swallowed_entries
from tasks.captions.cuetext import (
    Word,
    has_stamps,
    mostly_lower_case,
    plain,
    recurring_labels,
    remove_non_speech,
    strip_speaker_marks,
    timed_words,
)
from tasks.captions.encoding import UndecodableError, decode_caption_bytes
from tasks.captions.timedtext import TimedTextRefused, looks_like_timedtext, read_timedtext
from tasks.captions.wordcount import count_words

log = logging.getLogger(__name__)

Kind = Literal["auto", "manual"]
FLASH_MS = 20  # cues this short only re-show a finished line; a segment must be longer than this
HISTORY = 4  # lines of display history compared against a cue's leading lines
# A cue that starts this much before one above it in the file starts a second timeline (two downloads in
# one file). Real tracks never step back more than 1 s: checked on 1,558 youtube-dl tracks (SOURCES.md).
JUMP_BACK_MS = 5_000
CONTEXT_WORDS = 12  # words of earlier cues an acronym's spelled-out form may end in
_LANGUAGE = re.compile(r"^\s*Language:\s*(\S+)", re.IGNORECASE)


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


def read_cues(data: bytes | str, warnings: list[str]) -> tuple[list[Cue], list[str]]:
    """Cues (sorted by start) and header lines; whatever can be read is read, problems go to `warnings`."""
    if isinstance(data, bytes):
        try:
            data = _decode(data, warnings)
        except UndecodableError as exc:
            warnings.append(str(exc))
            return [], []
    cues, metadata = _file_cues(data, warnings)
    return sorted(cues, key=lambda c: c.start_ms), metadata  # stable: equal starts keep file order


def _file_cues(text: str, warnings: list[str]) -> tuple[list[Cue], list[str]]:
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


def _decode(data: bytes, warnings: list[str]) -> str:
    decoded = decode_caption_bytes(data)
    if decoded.note:
        warnings.append(decoded.note)
    return decoded.text


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


def header_language(metadata: Sequence[str]) -> str | None:
    """The `Language:` header value, if any."""
    for line in metadata:
        match = _LANGUAGE.match(line)
        if match:
            return match.group(1)
    return None


# YouTube's ASR spans: a bare `<c>`, or (older tracks) a grey `<c.colorCCCCCC>`/`<c.colorE5E5E5>`, the only
# colours in the real ASR tracks seen. A manual track may be styled with classes of its own
# (`<c.magenta.bg_black>`, `<c.white>`, a karaoke track's `<c.colorE23CE7>`): those say nothing.
_ASR_SPAN = re.compile(r"<c(?:\.color(?:CCCCCC|E5E5E5))?>", re.IGNORECASE)


def detect_kind(cues: Sequence[Cue]) -> Kind:
    """Auto (ASR) tracks carry inline word stamps, YouTube's `<c>` spans or 10 ms flash cues re-showing a
    line of the cue before; manual never do. A short cue alone is no sign: a creator's track may time an
    interjection at 20 ms ("JAKE: Oh!", once in 408 real manual tracks)."""
    before: set[str] = set()
    for cue in cues:
        shown = {plain(line) for line in cue.lines} - {""}
        if cue.end_ms - cue.start_ms <= FLASH_MS and shown and shown <= before:
            return "auto"
        if any(has_stamps(line) or _ASR_SPAN.search(line) for line in cue.lines):
            return "auto"
        before = shown
    return "manual"


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
        text = _decode(data, warnings) if isinstance(data, bytes) else data
    except UndecodableError as exc:
        return Track(
            language=language, kind=kind or "manual", segments=[], warnings=[str(exc)], refused=str(exc)
        )
    in_file_order, metadata = _file_cues(text, warnings)
    cues = sorted(in_file_order, key=lambda c: c.start_ms)  # stable: equal starts keep file order
    track_kind: Kind = kind or detect_kind(cues)
    pieces = _new_lines(cues, auto=track_kind == "auto")
    segments, words, dropped = _finish(pieces, keep_non_speech=keep_non_speech)
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


def _new_lines(cues: Sequence[Cue], *, auto: bool) -> list[tuple[int, int, list[Word]]]:
    """Per shown cue, the words it adds: (start_ms, end_ms, words)."""
    # Current YouTube tracks mark each finished line with a <= 20 ms flash cue. In such a track the last
    # line of every other cue is new even when it repeats the line above (a speaker said it twice).
    rolling = auto and any(c.end_ms - c.start_ms <= FLASH_MS for c in cues)
    every_line = [] if auto else [plain(line) for cue in cues for line in cue.lines]
    labels = not auto and mostly_lower_case(every_line)
    # ASR writes no labels; a manual track's speakers are the mixed-case labels that keep coming back.
    speakers = recurring_labels(every_line)
    history: list[str] = []
    out: list[tuple[int, int, list[Word]]] = []
    typed_until: int | None = None  # end of the cue before when its bottom line was typed
    for cue in cues:
        if cue.end_ms - cue.start_ms <= FLASH_MS:
            # A flash cue re-shows the line just typed, and the next cue carries it on top as shown here.
            # ASR may revise it on the way ("suite for" typed, "suite 4" re-shown: 3 lines in 370 real
            # tracks); compared with the typed form only, the carried line read as new and came out twice.
            # The revised form stands in for the typed one in the history; the typed words are kept.
            flashed = [text for text in map(plain, cue.lines) if text]
            if auto and typed_until == cue.start_ms and len(flashed) == 1 and history:
                history[-1] = flashed[0]
            continue
        shown = [(line, plain(line)) for line in cue.lines]
        raw = [line for line, text in shown if text]
        if not raw:
            continue
        texts = [text for _, text in shown if text]
        # The bottom line of a rolling cue is the one being typed. A cue whose bottom line is blank types
        # nothing: it holds the finished line on screen through a pause or at the end, longer than a
        # flash cue ("line\n \n", 1.9-9 s in real tracks). Its lines were all shown before.
        typing = bool(shown) and bool(shown[-1][1])
        # Every other cue of a rolling track has two lines, the one above and the one typed. A copy that lost
        # its whitespace-only lines shows a hold cue as its finished line alone: it types nothing either.
        if rolling and len(shown) == 1 and history and texts[0] == history[-1] and not has_stamps(raw[0]):
            typing = False
        typed_until = cue.end_ms if typing else None
        skip = _shown_prefix(raw, texts, history, last_is_new=rolling and typing) if auto else 0
        words: list[Word] = []
        for line in raw[skip:]:
            words.extend(
                strip_speaker_marks(
                    timed_words(line, cue.start_ms), name_labels=labels, dashes=not auto, speakers=speakers
                )
            )
        history = (history + texts[skip:])[-HISTORY:]
        if words:
            out.append((cue.start_ms, cue.end_ms, words))
    return out


def _shown_prefix(raw: list[str], texts: list[str], history: list[str], *, last_is_new: bool) -> int:
    """How many leading lines of a cue were already shown: the longest prefix equal to the history's tail.

    A line with inline stamps is being typed, so it is new and ends the prefix.
    """
    limit = next((i for i, line in enumerate(raw) if has_stamps(line)), len(raw))
    if last_is_new:
        limit = min(limit, len(raw) - 1)
    for k in range(min(limit, len(history)), 0, -1):
        if texts[:k] == history[-k:]:
            return k
    return 0


def _finish(
    pieces: list[tuple[int, int, list[Word]]], *, keep_non_speech: bool
) -> tuple[list[Segment], list[Word], int]:
    """Drop non-speech tags, trim each end to the next start, fold pieces left too short into the next."""
    dropped = 0
    kept: list[tuple[int, int, list[Word]]] = []
    said: list[str] = []  # the words just before, where an acronym's spelled-out form may end
    for start, end, words in pieces:
        if not keep_non_speech:
            words, n = remove_non_speech(words, said[-CONTEXT_WORDS:])
            dropped += n
            # What a note leaves behind may be punctuation alone ("[INAUDIBLE]." -> ".", "(...)"): 36 lines
            # of 15 real manual tracks became one-token clips of "." that way. Nothing in them was said.
            if words and not any(c.isalnum() for w in words for c in w.text):
                words = []
        if words:
            kept.append((start, end, words))
            said = [*said[-CONTEXT_WORDS:], *(w.text for w in words)]
    segments: list[Segment] = []
    all_words: list[Word] = []
    pending: tuple[int, list[Word]] | None = None
    for i, (start, end, words) in enumerate(kept):
        if pending is not None:
            start, words = pending[0], pending[1] + words
            pending = None
        if i + 1 < len(kept):
            end = min(end, kept[i + 1][0])
            # Trimming left nothing to show (two cues start together): the words join the next piece.
            # The last piece is never trimmed and every cue lasts > FLASH_MS, so nothing is left over.
            if end - start <= FLASH_MS:
                pending = (start, words)
                continue
        segments.append(Segment(start, end, " ".join(w.text for w in words)))
        all_words.extend(words)
    return segments, all_words, dropped
