"""What each seed method draws from one video's caption lines: spans, bags, windows (pure numpy).

Times are integer milliseconds (caption lines) or whole seconds (per-second video tokens); every
sampler takes a seeded `np.random.Generator`, so an epoch's draws are fixed by (seed, epoch).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.text import tokenize

MIN_SPAN_MS = 5000  # HowTo100M `min_time` and MIL-NCE's clip length: 5 s
BAG_SIZE = 4  # MIL-NCE: captions in each clip's bag of positives
TEXT_TOKENS = (8, 64)  # VideoCLIP: text token budget, drawn uniformly (inclusive)
VIDEO_SECONDS = (3, 32)  # VideoCLIP: video window length in seconds, drawn uniformly (inclusive)
MAX_TEXT_SPAN_MS = 256_000  # VideoCLIP: a text span stops growing at 256 s
SORT_WINDOW = 4  # TVTS: consecutive caption clips per sorting window


def merge_span(starts: np.ndarray, ends: np.ndarray, ind: int, min_ms: int = MIN_SPAN_MS) -> list[int]:
    """HowTo100M's `_get_single_text` (min_words 0): the caption lines merged with line `ind`, in the
    order they were added, until the span end[last] - start[first] reaches `min_ms`.

    With neighbours on both sides it takes the previous line when that gives the shorter span
    (end[e] - start[s-1] <= end[e+1] - start[s]), else the next one; at a video edge it takes the only
    side left; a whole video shorter than `min_ms` gives all its lines.
    """
    n = len(starts)
    first = last = ind
    added = [ind]
    while ends[last] - starts[first] < min_ms:
        if first > 0 and last < n - 1:
            take_prev = ends[last] - starts[first - 1] <= ends[last + 1] - starts[first]
        elif first > 0:
            take_prev = True
        elif last < n - 1:
            take_prev = False
        else:
            break
        if take_prev:
            first -= 1
            added.append(first)
        else:
            last += 1
            added.append(last)
    return added


def howto100m_draws(
    starts: np.ndarray, ends: np.ndarray, rng: np.random.Generator, n: int, min_ms: int = MIN_SPAN_MS
) -> list[list[int]]:
    """`n` caption lines drawn uniformly with replacement, each merged to >= `min_ms` (merge_span)."""
    picks = rng.choice(len(starts), n, replace=True)
    return [merge_span(starts, ends, int(i), min_ms) for i in picks]


@dataclass(frozen=True)
class MilNceClip:
    """One MIL-NCE sample: the clip's span (ms) and its bag of caption indices (length BAG_SIZE)."""

    start_ms: int
    end_ms: int
    bag: list[int]


def nearest_candidates_start(starts: np.ndarray, ends: np.ndarray, ind: int, k: int = BAG_SIZE) -> int:
    """MIL-NCE's `_find_nearest_candidates`: where the bag of k consecutive captions around `ind` starts.

    The window grows from `ind` toward the side that adds the shorter span (left only when strictly
    shorter); at the first line it starts at 0, at the last line it starts k - grown lines earlier.
    """
    n = len(starts)
    first, last, grown = ind, ind, 1
    while grown < k:
        if first == 0:
            return 0
        if last == n - 1:
            return first - (k - grown)
        if ends[last] - starts[first - 1] < ends[last + 1] - starts[first]:
            first -= 1
        else:
            last += 1
        grown += 1
    return first


def milnce_clip(
    starts: np.ndarray,
    ends: np.ndarray,
    rng: np.random.Generator,
    k: int = BAG_SIZE,
    min_ms: int = MIN_SPAN_MS,
) -> MilNceClip:
    """A uniform caption line widened symmetrically to `min_ms` (start >= 0, times cut to whole
    seconds as the reference's int()), with its bag of k neighbouring captions (clamped indices)."""
    n = len(starts)
    ind = int(rng.integers(n))
    first = nearest_candidates_start(starts, ends, ind, k) if k > 1 else ind
    bag = [max(0, min(n - 1, first + i)) for i in range(k)]
    start_s, end_s = starts[ind] / 1000.0, ends[ind] / 1000.0
    if end_s - start_s < min_ms / 1000.0:
        diff = min_ms / 1000.0 - end_s + start_s
        start_s = max(0.0, start_s - diff / 2)
        end_s = start_s + min_ms / 1000.0
    return MilNceClip(int(start_s) * 1000, int(end_s) * 1000, bag)


@dataclass(frozen=True)
class VideoClipPair:
    """One VideoCLIP pair: caption lines (in time order) with their token count, a video window [a, b) s."""

    lines: list[int]
    tokens: int
    video_s: tuple[int, int]


def videoclip_pair(
    starts: np.ndarray,
    ends: np.ndarray,
    n_tokens: np.ndarray,
    seconds: int,
    rng: np.random.Generator,
    max_tokens: int = TEXT_TOKENS[1],
) -> VideoClipPair:
    """A text span grown to a random token budget and a video window of random length inside it.

    Text: budget L ~ U{8..max_tokens} (64; less when the text side reads fewer words, so that the
    span is what the encoder sees); from a random line, add the left or right neighbour (50/50; the
    other side at an edge) while tokens < L and the span stays < 256 s; tokens are cut to max_tokens.
    Video: centre c ~ U{floor(t0) .. ceil(t1) - 1} (so second c overlaps the text), clamped to the
    video; length ~ U{3..32} s grown one second at a time to a random side within [0, seconds).
    """
    n = len(starts)
    budget = int(rng.integers(min(TEXT_TOKENS[0], max_tokens), max_tokens + 1))
    first = last = int(rng.integers(n))
    tokens = int(n_tokens[first])
    while tokens < budget:
        left, right = first > 0, last < n - 1
        if not (left or right):
            break
        go_left = left and (not right or rng.random() < 0.5)
        lo, hi = (first - 1, last) if go_left else (first, last + 1)
        if ends[hi] - starts[lo] >= MAX_TEXT_SPAN_MS:
            break
        first, last = lo, hi
        tokens += int(n_tokens[lo if go_left else hi])
    t0, t1 = starts[first] / 1000.0, ends[last] / 1000.0
    lo_c, hi_c = int(np.floor(t0)), max(int(np.ceil(t1)) - 1, int(np.floor(t0)))
    centre = min(int(rng.integers(lo_c, hi_c + 1)), seconds - 1)
    length = int(rng.integers(VIDEO_SECONDS[0], VIDEO_SECONDS[1] + 1))
    a, b = centre, centre + 1
    while b - a < length and (a > 0 or b < seconds):
        if a > 0 and (b >= seconds or rng.random() < 0.5):
            a -= 1
        else:
            b += 1
    return VideoClipPair(list(range(first, last + 1)), min(tokens, max_tokens), (a, b))


def token_counts(texts: list[str]) -> np.ndarray:
    """Tokens per caption line (HowTo100M's tokeniser), for the VideoCLIP budget."""
    return np.array([len(tokenize(t)) for t in texts], dtype=np.int64)


def sort_windows(n_lines: int, rng: np.random.Generator, count: int, size: int = SORT_WINDOW) -> list[int]:
    """TVTS: first lines of `count` windows of `size` consecutive caption clips (none if too short)."""
    if n_lines < size:
        return []
    return [int(i) for i in rng.integers(0, n_lines - size + 1, count)]
