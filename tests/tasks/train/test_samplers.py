"""The seed methods' samplers: hand-built caption lists for the rules, properties on random ones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.train.retrieval import nearest_neighbours, retrieval_batches
from tasks.train.samplers import (
    howto100m_draws,
    merge_span,
    milnce_clip,
    nearest_candidates_start,
    sort_windows,
    videoclip_pair,
)

# Lines (ms): 0-2000, 2000-3000, 3500-4000, 4000-9000, 9000-10000, 10000-11500
STARTS = np.array([0, 2000, 3500, 4000, 9000, 10000])
ENDS = np.array([2000, 3000, 4000, 9000, 10000, 11500])


def test_merge_follows_the_references_neighbour_rule() -> None:
    # Line 1 (1 s): prev gives end[1]-start[0] = 3000, next gives end[2]-start[1] = 2000 -> next (line 2);
    # then prev 4000 vs next 7000 -> prev (line 0); span 0-4000 still < 5 s: prev impossible -> next (3).
    assert merge_span(STARTS, ENDS, 1) == [1, 2, 0, 3]
    # Line 3 is already 5 s long: alone.
    assert merge_span(STARTS, ENDS, 3) == [3]
    # First line: only the next side exists.
    assert merge_span(STARTS, ENDS, 0) == [0, 1, 2, 3]
    # Last line: only the previous side; 4 (9000-11500) then 3 (4000-11500 >= 5 s).
    assert merge_span(STARTS, ENDS, 5) == [5, 4, 3]
    # Ties go to the previous line (d2 <= d1): with back-to-back 1 s lines every step ties, so the
    # span grows to the left only.
    even = np.arange(0, 10000, 1000)
    assert merge_span(even, even + 1000, 4) == [4, 3, 2, 1, 0]
    # A whole video shorter than 5 s gives all its lines.
    assert sorted(merge_span(np.array([0, 1000]), np.array([1000, 3000]), 0)) == [0, 1]
    # min 0: no merging.
    assert merge_span(STARTS, ENDS, 2, min_ms=0) == [2]


def test_howto100m_draws_with_replacement_and_every_span_at_least_5s() -> None:
    rng = np.random.default_rng(0)
    draws = howto100m_draws(STARTS, ENDS, rng, 64)
    assert len(draws) == 64 and len({d[0] for d in draws}) <= len(STARTS)  # repeats: with replacement
    for d in draws:
        assert ENDS[max(d)] - STARTS[min(d)] >= 5000
        assert sorted(d) == list(range(min(d), max(d) + 1))  # contiguous lines


def test_milnce_bag_and_widened_clip() -> None:
    # From line 1: left span end[1]-start[0]=3000 vs right end[2]-start[1]=2000 -> right; then left 4000
    # vs right 7000 -> left (strictly shorter); grown 3: start 0 returned at the next step.
    assert nearest_candidates_start(STARTS, ENDS, 1) == 0
    # From the last line: grow stops at the end, the bag starts k-1 lines earlier.
    assert nearest_candidates_start(STARTS, ENDS, 5) == 2
    assert nearest_candidates_start(STARTS, ENDS, 0) == 0
    rng = np.random.default_rng(1)
    for _ in range(50):
        clip = milnce_clip(STARTS, ENDS, rng)
        assert len(clip.bag) == 4 and clip.bag == list(range(clip.bag[0], clip.bag[0] + 4))
        assert clip.end_ms - clip.start_ms >= 4000 and clip.start_ms >= 0  # 5 s, cut to whole seconds
        assert clip.start_ms % 1000 == 0 and clip.end_ms % 1000 == 0
    # A short video: the bag's indices are clamped to its lines.
    clip = milnce_clip(np.array([0, 1000]), np.array([1000, 2000]), rng)
    assert set(clip.bag) <= {0, 1} and len(clip.bag) == 4


@st.composite
def captions(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    n = draw(st.integers(1, 40))
    gaps = draw(st.lists(st.integers(0, 3000), min_size=n, max_size=n))
    lengths = draw(st.lists(st.integers(300, 9000), min_size=n, max_size=n))
    tokens = draw(st.lists(st.integers(1, 15), min_size=n, max_size=n))
    starts, t = [], 0
    for gap, length in zip(gaps, lengths, strict=True):
        starts.append(t + gap)
        t = t + gap + length
    starts_a = np.array(starts)
    ends = starts_a + np.array(lengths)
    seconds = -(-int(ends[-1]) // 1000) + draw(st.integers(0, 5))  # the features cover the captions
    return starts_a, ends, np.array(tokens), seconds


@settings(max_examples=200, deadline=None)
@given(captions(), st.integers(0, 2**31))
def test_videoclip_pairs_overlap_and_have_bounded_lengths(
    caps: tuple[np.ndarray, np.ndarray, np.ndarray, int], seed: int
) -> None:
    starts, ends, tokens, seconds = caps
    pair = videoclip_pair(starts, ends, tokens, seconds, np.random.default_rng(seed))
    a, b = pair.video_s
    t0, t1 = starts[pair.lines[0]] / 1000, ends[pair.lines[-1]] / 1000
    assert min(b, t1) - max(a, t0) > 0  # the video window overlaps the text span
    assert 0 <= a < b <= seconds
    assert b - a <= 32 and (b - a >= 3 or b - a == seconds)  # shorter only if the video is
    assert pair.lines == list(range(pair.lines[0], pair.lines[-1] + 1))
    assert pair.tokens <= 64
    all_used = pair.lines[0] == 0 and pair.lines[-1] == len(starts) - 1
    span_limit = (t1 - t0) > 200  # stopped by the 256 s span rule
    assert pair.tokens >= 8 or all_used or span_limit


def test_videoclip_window_is_not_the_text_span() -> None:
    rng = np.random.default_rng(2)
    starts, ends = np.arange(0, 120_000, 4000), np.arange(4000, 124_000, 4000)
    pairs = [videoclip_pair(starts, ends, np.full(30, 4), 124, rng) for _ in range(200)]
    equal = sum(p.video_s == (starts[p.lines[0]] // 1000, ends[p.lines[-1]] // 1000) for p in pairs)
    assert equal < 20  # overlapping, rarely equal
    assert len({p.video_s[1] - p.video_s[0] for p in pairs}) > 15  # lengths spread over 3..32


def test_sort_windows_are_inside_the_video() -> None:
    rng = np.random.default_rng(3)
    assert sort_windows(3, rng, 5) == []
    firsts = sort_windows(10, rng, 100)
    assert min(firsts) >= 0 and max(firsts) <= 6 and len(set(firsts)) == 7


def test_nearest_neighbours_exact() -> None:
    x = np.array([[0.0, 0], [0, 1], [5, 5], [5, 6], [0, 0.5]])
    hits = nearest_neighbours(x, 3)
    assert hits[0].tolist() == [0, 4, 1] and hits[2].tolist()[:2] == [2, 3]


def test_retrieval_batches_group_videos_of_a_task() -> None:
    """A 4-task set: vectors are a task direction plus noise. Retrieval batches are mostly one task;
    random batches are ~1/4 same-task pairs."""
    rng = np.random.default_rng(4)
    tasks = np.repeat(np.arange(4), 64)
    centres = rng.standard_normal((4, 32))
    vectors = centres[tasks] + 0.8 * rng.standard_normal((256, 32))

    def same_task(batches: list[np.ndarray]) -> float:
        shares = []
        for b in batches:
            t = tasks[b]
            pairs = (t[:, None] == t[None, :]).sum() - len(t)
            shares.append(pairs / (len(t) * (len(t) - 1)))
        return float(np.mean(shares))

    retrieved = retrieval_batches(vectors, rng, videos_per_batch=16)
    random = [rng.permutation(256)[i : i + 16] for i in range(0, 256, 16)]
    assert len(retrieved) == 16 and all(len(b) == 16 and len(set(b)) == 16 for b in retrieved)
    assert same_task(retrieved) > 0.8
    assert same_task(random) == pytest.approx(0.25, abs=0.1)


def test_retrieval_batches_leave_out_faiss_padding(monkeypatch: pytest.MonkeyPatch) -> None:
    """FAISS IVF pads a row's hits with -1 where the query's list is short (past EXACT_MAX videos): a batch
    holds real neighbours only, never the last video through index -1."""
    import tasks.train.retrieval as retrieval

    n = 64
    padded = np.full((n, 33), -1, dtype=np.int64)
    padded[:, 0] = np.arange(n)
    padded[:, 1] = (np.arange(n) + 1) % n  # one true neighbour, the rest padding
    monkeypatch.setattr(retrieval, "nearest_neighbours", lambda vectors, k: padded[:, :k])
    batches = retrieval.retrieval_batches(np.zeros((n, 4)), np.random.default_rng(0), videos_per_batch=8)
    assert batches and all(b.min() >= 0 for b in batches)
    for b in batches:
        assert b.tolist() == [int(b[0]), (int(b[0]) + 1) % n]  # the seed and its one real neighbour
