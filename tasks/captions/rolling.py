"""Rolling de-duplication: per cue, the words it adds, not the lines it shows again (see vtt.py)."""

from __future__ import annotations

from collections.abc import Sequence

from tasks.captions.cuetext import Word, has_stamps, plain, timed_words
from tasks.captions.speakers import mostly_lower_case, recurring_labels, strip_speaker_marks
from tasks.captions.track import FLASH_MS, Cue

HISTORY = 4  # lines of display history compared against a cue's leading lines


def new_lines(cues: Sequence[Cue], *, auto: bool) -> list[tuple[int, int, list[Word]]]:
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
