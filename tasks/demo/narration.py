"""What a demo video says and when: timed segments (intro, one per step) with per-word times."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Spoken fillers that a real narrator adds around the article sentence; they pad each step to a
# natural length without naming another step.
_OPENERS = ("First,", "Next,", "Now", "Then", "After that,", "Okay, now", "Alright,", "So")
_FILLERS = (
    "take your time with this part",
    "it really makes a difference",
    "you can see it right here",
    "just like I am doing now",
    "this is the important bit",
    "do not rush this step",
    "it only takes a moment",
    "keep an eye on it",
)
WORDS_PER_S = 3.4  # a brisk narrator; YouTube how-to speech is 2.5-3.5 words per second


@dataclass(frozen=True)
class Word:
    """One spoken word and when it starts (ms from the video start)."""

    text: str
    start_ms: int


@dataclass(frozen=True)
class Segment:
    """A stretch of the video: the intro (step None) or one article step shown on screen."""

    step: int | None  # index into the task's flattened step list
    start_ms: int
    end_ms: int
    words: tuple[Word, ...]
    music: bool = False  # intro with music instead of speech

    @property
    def text(self) -> str:
        """The segment's spoken text."""
        return " ".join(w.text for w in self.words)


def step_script(summary: str, detail: str, rng: np.random.Generator, first: bool) -> str:
    """What the narrator says for one step."""
    opener = "First," if first else str(rng.choice(_OPENERS[1:]))
    lead = summary[0].lower() + summary[1:]
    return f"{opener} {lead} {detail}"


def pad_scripts(texts: list[str], min_words: int, rng: np.random.Generator) -> list[str]:
    """Add filler remarks, one per step in turn, until the narration reaches min_words."""
    out = list(texts)
    i = 0
    while sum(len(t.split()) for t in out) < min_words and i < 3 * len(out):
        filler = str(rng.choice(_FILLERS))
        out[i % len(out)] += f" {filler[0].upper()}{filler[1:]}."
        i += 1
    return out


def intro_script(task_title: str, rng: np.random.Generator) -> str:
    """The greeting before the first step."""
    hello = str(rng.choice(("Hi everyone,", "Hey guys,", "Hello and welcome back,")))
    return f"{hello} today I am going to show you how to {task_title.lower()}."


def time_words(text: str, start_ms: int, end_ms: int, rng: np.random.Generator) -> tuple[Word, ...]:
    """Spread words over [start_ms, end_ms) with natural unevenness (long words take longer)."""
    tokens = text.split()
    weights = np.array([0.6 + len(t) * 0.08 for t in tokens]) * rng.uniform(0.85, 1.15, len(tokens))
    span = end_ms - start_ms
    starts = start_ms + np.concatenate([[0.0], np.cumsum(weights)[:-1]]) / weights.sum() * span
    return tuple(Word(t, int(s)) for t, s in zip(tokens, starts, strict=True))


def build_segments(
    scripts: list[tuple[int | None, str]], rng: np.random.Generator, music_intro: bool
) -> list[Segment]:
    """Lay scripts end to end; each segment lasts as long as its words take to say plus pauses."""
    segments: list[Segment] = []
    t = 0
    for step, text in scripts:
        n = len(text.split())
        if step is None and music_intro:
            dur = int(rng.uniform(2500, 3500))
            segments.append(Segment(None, t, t + dur, (), music=True))
            t += dur
            continue
        dur = int(max(2500 if step is None else 4000, n / WORDS_PER_S * 1000) + rng.uniform(400, 800))
        speak_from = t + int(rng.uniform(150, 400))
        speak_to = t + dur - int(rng.uniform(300, 600))
        segments.append(Segment(step, t, t + dur, time_words(text, speak_from, speak_to, rng)))
        t += dur
    return segments


def retime(segments: list[Segment], texts: list[str], rng: np.random.Generator) -> list[Segment]:
    """Same segment spans with other words (a translation spoken over the same pictures)."""
    out = []
    for seg, text in zip(segments, texts, strict=True):
        if not text:
            out.append(seg)
            continue
        words = time_words(text, seg.start_ms + 200, seg.end_ms - 400, rng)
        out.append(Segment(seg.step, seg.start_ms, seg.end_ms, words, seg.music))
    return out
