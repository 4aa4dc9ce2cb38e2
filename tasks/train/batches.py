"""An epoch's batches for each seed method, drawn from per-video caption lines and frame rows."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from models.text import tokenize
from tasks.train.samplers import (
    SORT_WINDOW,
    TEXT_TOKENS,
    howto100m_draws,
    milnce_clip,
    sort_windows,
    token_counts,
    videoclip_pair,
)
from tasks.train.second_tokens import MAX_WINDOW_TOKENS, span_tokens
from tasks.train.videos import VideoLines


@dataclass
class Draw:
    """One batch before text encoding. Rows come video by video; `groups` numbers the videos."""

    video: np.ndarray  # (N, d_video) pooled spans, or (N, T, d_video) zero-padded per-second tokens
    texts: list[str]  # N captions (N * K for MIL-NCE: K per clip, clip by clip)
    groups: np.ndarray  # (N,) int64 video number in the batch
    order: np.ndarray  # (N,) int64 caption line index in its video
    tokens: np.ndarray | None = None  # TVTS: (W, T, d_video) window tokens, zero-padded
    real: np.ndarray | None = None  # TVTS: (W, T) bool, real tokens

    def __len__(self) -> int:
        return len(self.video)


def chunks(order: Sequence[int] | np.ndarray, size: int, drop_last: bool) -> list[np.ndarray]:
    """Consecutive groups of `size` (the last one shorter unless dropped)."""
    out = [np.asarray(order[i : i + size], dtype=np.int64) for i in range(0, len(order), size)]
    return out[:-1] if drop_last and out and len(out[-1]) < size else out


def pad_sequences(
    seqs: list[np.ndarray], length: int, dtype: type = np.float32
) -> tuple[np.ndarray, np.ndarray]:
    dim = seqs[0].shape[1]
    out = np.zeros((len(seqs), length, dim), dtype=dtype)
    real = np.zeros((len(seqs), length), dtype=bool)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s[:length]
        real[i, : len(s)] = True
    return out, real


def window_tokens(video: VideoLines, a_s: int, b_s: int, limit: int = MAX_WINDOW_TOKENS) -> np.ndarray:
    """Per-second tokens of [a, b) s; a longer window keeps `limit` evenly spaced seconds, in order."""
    return span_tokens(video.tokens(), a_s, b_s, limit)


def howto100m_batches(
    videos: list[VideoLines],
    rng: np.random.Generator,
    videos_per_batch: int,
    per_video: int,
    min_ms: int,
    drop_last: bool,
) -> Iterator[Draw]:
    """32 videos x 64 lines drawn with replacement, each merged to >= 5 s; words in the reference's order
    (the drawn line, then each merged neighbour as it was added)."""
    for batch in chunks(rng.permutation(len(videos)), videos_per_batch, drop_last):
        vectors, texts, groups, order = [], [], [], []
        for g, v in enumerate(batch):
            video = videos[int(v)]
            draws = howto100m_draws(video.starts, video.ends, rng, per_video, min_ms)
            spans = np.array([[video.starts[min(d)], video.ends[max(d)]] for d in draws])
            vectors.append(video.pool(spans))
            texts += [" ".join(video.texts[i] for i in d) for d in draws]
            groups += [g] * len(draws)
            order += [d[0] for d in draws]
        yield Draw(np.concatenate(vectors), texts, np.array(groups), np.array(order))


def milnce_batches(
    videos: list[VideoLines],
    rng: np.random.Generator,
    videos_per_batch: int,
    passes: int,
    bag: int,
    min_ms: int,
    drop_last: bool,
) -> Iterator[Draw]:
    """`passes` rounds over the videos; each batch holds one clip of each of its distinct videos."""
    for _ in range(passes):
        for batch in chunks(rng.permutation(len(videos)), videos_per_batch, drop_last):
            spans, texts, order, chosen = [], [], [], []
            for v in batch:
                video = videos[int(v)]
                clip = milnce_clip(video.starts, video.ends, rng, bag, min_ms)
                spans.append((clip.start_ms, clip.end_ms))
                texts += [video.texts[i] for i in clip.bag]
                order.append(clip.bag[0])
                chosen.append(video)
            pooled = np.concatenate([v.pool(np.array([s])) for v, s in zip(chosen, spans, strict=True)])
            yield Draw(pooled, texts, np.arange(len(batch)), np.array(order))


def videoclip_text(video: VideoLines, lines: list[int], max_tokens: int = TEXT_TOKENS[1]) -> str:
    """The text span's words, cut to VideoCLIP's 64 tokens (or fewer, see videoclip_pair)."""
    words = [w for i in lines for w in tokenize(video.texts[i])]
    return " ".join(words[:max_tokens])


def videoclip_batches(
    videos: list[VideoLines],
    batches: list[np.ndarray],
    rng: np.random.Generator,
    per_video: int,
    as_tokens: bool,
    max_tokens: int = TEXT_TOKENS[1],
) -> Iterator[Draw]:
    """`per_video` overlapping (text span, video window) pairs of each video of each batch."""
    for batch in batches:
        parts, texts, groups, order = [], [], [], []
        for g, v in enumerate(batch):
            video = videos[int(v)]
            counts = token_counts(video.texts)
            for _ in range(per_video):
                pair = videoclip_pair(video.starts, video.ends, counts, video.seconds, rng, max_tokens)
                a, b = pair.video_s
                if as_tokens:
                    parts.append(window_tokens(video, a, b))
                else:
                    parts.append(video.mean_tokens(a, b)[None])
                texts.append(videoclip_text(video, pair.lines, max_tokens))
                groups.append(g)
                order.append(pair.lines[0])
        video_in = pad_sequences(parts, max(len(p) for p in parts))[0] if as_tokens else np.concatenate(parts)
        yield Draw(video_in, texts, np.array(groups), np.array(order))


def tvts_batches(
    videos: list[VideoLines],
    rng: np.random.Generator,
    videos_per_batch: int,
    windows: int,
    passes: int,
    drop_last: bool,
) -> Iterator[Draw]:
    """`passes` rounds over the videos; each batch takes `windows` windows of 4 consecutive caption
    clips per video: the clips' own pooled lines as the contrastive pairs, and the window's
    per-second tokens for the sorting head."""
    usable = [i for i, v in enumerate(videos) if len(v.starts) >= SORT_WINDOW]
    for _ in range(passes):
        for batch in chunks(rng.permutation(usable), videos_per_batch, drop_last):
            vectors, texts, groups, order, seqs = [], [], [], [], []
            for g, v in enumerate(batch):
                video = videos[int(v)]
                for first in sort_windows(len(video.starts), rng, windows):
                    lines = list(range(first, first + SORT_WINDOW))
                    vectors.append(video.line_vectors[lines].astype(np.float32))
                    texts += [video.texts[i] for i in lines]
                    groups += [g] * SORT_WINDOW
                    order += lines
                    a = int(video.starts[first] // 1000)
                    b = int(-(-video.ends[lines[-1]] // 1000))
                    seqs.append(window_tokens(video, a, min(b, video.seconds)))
            tokens, real = pad_sequences(seqs, max(len(s) for s in seqs))
            yield Draw(np.concatenate(vectors), texts, np.array(groups), np.array(order), tokens, real)
