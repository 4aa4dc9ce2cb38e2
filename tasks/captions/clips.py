"""Cut caption segments into clips: one per caption line as in HowTo100M, optionally merged to a span."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tasks.captions.track import Segment
from tasks.captions.wordcount import count_words

# A standard English stop-word list (articles, pronouns, auxiliaries, prepositions, conjunctions):
# HowTo100M's caption.json removed such words, its raw_caption.json kept them; we keep both columns.
STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just let me more
    most my myself no nor not now of off on once only or other our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves s t don ll m re ve d o y""".split()
)
_EDGE_PUNCT = re.compile(r"^[^\w']+|[^\w']+$")


@dataclass(frozen=True)
class Clip:
    """A clip: a span of the video and what is said in it."""

    idx: int
    start_ms: int
    end_ms: int
    text: str
    text_no_stopwords: str | None
    n_words: int


def without_stop_words(text: str) -> str:
    """The text with stop words removed (compared lower-case, without edge punctuation)."""
    kept = []
    for word in text.split():
        core = _EDGE_PUNCT.sub("", word.lower())
        stem = core.split("'", 1)[0]  # "don't" -> "don", "it's" -> "it"
        if core and core not in STOP_WORDS and stem not in STOP_WORDS:
            kept.append(word)
    return " ".join(kept)


def cut_clips(
    segments: Sequence[Segment],
    *,
    min_ms: int = 0,
    max_ms: int | None = None,
    stop_words: bool = True,
) -> list[Clip]:
    """Clips from sorted, non-overlapping segments.

    With `min_ms` > 0 neighbours are merged until a clip lasts at least `min_ms`, never past `max_ms`
    (a single segment longer than `max_ms` stays whole: nothing tells where inside it to cut). A short
    tail is merged into the clip before it when that stays within `max_ms`.
    """
    groups: list[list[Segment]] = []
    for seg in segments:
        if groups and _span(groups[-1]) < min_ms and _fits(groups[-1], seg, max_ms):
            groups[-1].append(seg)
        else:
            groups.append([seg])
    if len(groups) > 1 and _span(groups[-1]) < min_ms and _fits(groups[-2], groups[-1][-1], max_ms):
        groups[-2].extend(groups.pop())
    clips = []
    for idx, group in enumerate(groups):
        text = " ".join(s.text for s in group)
        clips.append(
            Clip(
                idx=idx,
                start_ms=group[0].start_ms,
                end_ms=group[-1].end_ms,
                text=text,
                text_no_stopwords=without_stop_words(text) if stop_words else None,
                n_words=count_words(text),
            )
        )
    return clips


def _span(group: list[Segment]) -> int:
    return group[-1].end_ms - group[0].start_ms


def _fits(group: list[Segment], seg: Segment, max_ms: int | None) -> bool:
    return max_ms is None or seg.end_ms - group[0].start_ms <= max_ms
