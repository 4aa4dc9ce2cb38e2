"""Timed words to clean segments: non-speech notes out, each end trimmed to the next start."""

from __future__ import annotations

from tasks.captions.cuetext import Word
from tasks.captions.nonspeech import remove_non_speech
from tasks.captions.track import FLASH_MS, Segment

CONTEXT_WORDS = 12  # words of earlier cues an acronym's spelled-out form may end in


def finish_segments(
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
