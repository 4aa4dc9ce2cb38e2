"""Clip cutting: one clip per line, merging to a minimum span within a maximum, stop-word column."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.captions.clips import cut_clips, without_stop_words
from tasks.captions.track import Segment


def segs(*spans: tuple[int, int]) -> list[Segment]:
    return [Segment(s, e, f"line {i}") for i, (s, e) in enumerate(spans)]


def test_one_clip_per_segment_by_default() -> None:
    clips = cut_clips(segs((0, 1000), (1000, 4000), (4500, 9000)))
    assert [(c.idx, c.start_ms, c.end_ms, c.text, c.n_words) for c in clips] == [
        (0, 0, 1000, "line 0", 2),
        (1, 1000, 4000, "line 1", 2),
        (2, 4500, 9000, "line 2", 2),
    ]


def test_merge_to_min_within_max() -> None:
    s = segs((0, 2000), (2000, 4000), (4000, 6000), (6000, 12000), (12000, 13000))
    clips = cut_clips(s, min_ms=5000, max_ms=8000)
    assert [(c.start_ms, c.end_ms) for c in clips] == [(0, 6000), (6000, 13000)]
    assert clips[0].text == "line 0 line 1 line 2"
    # max_ms stops a merge even when the clip is still short.
    clips = cut_clips(segs((0, 1000), (1000, 9000)), min_ms=5000, max_ms=5000)
    assert [(c.start_ms, c.end_ms) for c in clips] == [(0, 1000), (1000, 9000)]


def test_stop_words_column() -> None:
    assert without_stop_words("Now, you don't want to over-mix the batter.") == "want over-mix batter."
    assert cut_clips(segs((0, 10)), stop_words=False)[0].text_no_stopwords is None


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3000), st.integers(21, 9000)), min_size=0, max_size=60),
    st.integers(0, 10_000),
    st.one_of(st.none(), st.integers(1, 20_000)),
)
def test_clips_cover_segments_in_order(
    gaps_lens: list[tuple[int, int]], min_ms: int, max_ms: int | None
) -> None:
    t, spans = 0, []
    for gap, length in gaps_lens:
        spans.append((t + gap, t + gap + length))
        t += gap + length
    s = segs(*spans)
    clips = cut_clips(s, min_ms=min_ms, max_ms=max_ms)
    assert " ".join(c.text for c in clips) == " ".join(x.text for x in s)
    assert [c.idx for c in clips] == list(range(len(clips)))
    for a, b in zip(clips, clips[1:], strict=False):
        assert a.end_ms <= b.start_ms
    for c in clips:
        merged = c.text.count("line") > 1
        if merged and max_ms is not None:
            assert c.end_ms - c.start_ms <= max_ms
