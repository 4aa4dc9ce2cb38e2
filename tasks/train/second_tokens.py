"""Per-second video tokens (the VideoCLIP/TVTS towers' input) from one video's feature rows; pure numpy.

VideoCLIP feeds its video transformer one S3D feature per second. This project's rows come at 1/s (2D)
and 1.5/s (3D, one per 16 frames at 24 fps), as HowTo100M's released .npy do, so second t's token is
2D row t beside the max of the 3D rows overlapping [t, t + 1), each half L2'd: 4096-d, one per second.
Training, `howto eval heldout`, `howto search-clips` and the benchmarks' raw-video route all cut their
tokens here, and VideoCLIP's lite tower reads their mean over a window or clip (`token_mean`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tasks.train.pooling import MODEL_FPS, MODELS, REFERENCE_POOLING, pool_clips
from tasks.train.samplers import VIDEO_SECONDS

MAX_WINDOW_TOKENS = VIDEO_SECONDS[1]  # per-second tokens kept per window (TVTS windows are cut to it)


def covered_seconds(rows: Mapping[str, np.ndarray]) -> int:
    """Whole seconds covered by every model's rows (at least 1)."""
    return max(1, int(min(len(r) / MODEL_FPS[m] for m, r in rows.items())))


def second_tokens(rows: Mapping[str, np.ndarray]) -> np.ndarray:
    """(seconds, d_video) float16 tokens: second t pools [t, t + 1) (2D row t, the 3D rows overlapping
    it), L2 per model. Always the reference's max over the second's own rows, whatever a run's clip
    pooling: a token has no context, its neighbours are other tokens."""
    t = np.arange(covered_seconds(rows), dtype=np.int64) * 1000
    seconds = np.stack([t, t + 999], axis=1)
    models = tuple(m for m in MODELS if m in rows)
    return pool_clips(rows, seconds, models, REFERENCE_POOLING).astype(np.float16)


def span_tokens(
    tokens: np.ndarray, a_s: int, b_s: int, limit: int = MAX_WINDOW_TOKENS, dtype: type = np.float32
) -> np.ndarray:
    """Tokens of seconds [a, b) (at least one, clamped to the video) as a copy in `dtype` (float16 keeps
    their values: evaluation holds many clips' tokens at once); a longer window keeps `limit` evenly
    spaced seconds, in order."""
    a_s = min(max(0, a_s), len(tokens) - 1)
    rows = tokens[a_s : max(b_s, a_s + 1)]
    if len(rows) > limit:
        rows = rows[np.linspace(0, len(rows) - 1, limit).round().astype(int)]
    return rows.astype(dtype)


def clip_seconds(start_ms: int, end_ms: int) -> tuple[int, int]:
    """The whole seconds [floor(start), ceil(end)) a clip's span touches: the seconds whose tokens it gets."""
    return int(start_ms) // 1000, -(-int(end_ms) // 1000)


def token_widths(rows: Mapping[str, np.ndarray]) -> tuple[int, ...]:
    """Each model's part of a token (its row width), in MODELS order, as `second_tokens` concatenates them."""
    return tuple(rows[m].shape[1] for m in MODELS if m in rows)


def token_mean(tokens: np.ndarray, widths: Sequence[int]) -> np.ndarray:
    """(d_video,) float32: the mean of tokens (T, d_video), L2 per model part (`token_widths`).

    VideoCLIP's lite tower pools its window by a mean: a max over a 3-32 s window keeps each dimension's
    largest value anywhere in it, which for long windows is mostly noise. Its training windows and every
    evaluation's clips are averaged here, so the tower reads one kind of input."""
    mean = tokens.astype(np.float32).mean(0)
    parts, at = [], 0
    for width in widths:
        part = mean[at : at + width]
        parts.append(part / max(float(np.linalg.norm(part)), 1e-12))
        at += width
    return np.concatenate(parts)
