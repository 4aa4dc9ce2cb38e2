"""CrossTask step localisation: the dynamic program, ground-truth matrices, recall and the split.

Pure numpy. The DP follows CrossTask's `dp.pyx` (Zhukov et al. 2019): states k = 0..2K, even k is
background, odd k is step (k+1)/2; each step takes exactly one second, in order, with background in
between. Candidates are tried in the reference's order (stay in background, k-1, k-2) and a later
one wins only when strictly cheaper, which reproduces its tie-breaking.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

INF = float("inf")


def dp(cost: np.ndarray, bg_cost: float = 0.0) -> tuple[np.ndarray, float]:
    """One second per step, in order, minimising the summed cost C[t, step]; returns (Y, total cost).

    `cost` is (T seconds, K steps) and finite. Y is a (T, K) 0/1 matrix with exactly one 1 per column.
    A video shorter than its step list (T < K) has no such placement: Y is all zeros, the cost inf,
    and every annotated step counts as missed.
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError(f"cost must be (T, K), got shape {cost.shape}")
    n_t, n_k = cost.shape
    y = np.zeros((n_t, n_k), dtype=np.uint8)
    if n_k == 0 or n_t < n_k:
        return y, INF
    if not np.isfinite(cost).all():
        raise ValueError("cost has non-finite entries")
    n_ext = 2 * n_k + 1
    k = np.arange(n_ext)
    background = k % 2 == 0
    step_of = (k + 1) // 2  # 0 for background states
    # Unreachable states hold +inf (the reference holds -1 and checks its back-pointer instead).
    total = np.full((n_t + 1, n_ext), INF)
    back = np.full((n_t + 1, n_ext), -1, dtype=np.int64)
    total[0, 0] = 0.0
    back[0, 0] = 0
    for t in range(1, n_t + 1):
        prev = total[t - 1]
        stay = np.where(background, prev, INF)  # a step state never lasts two seconds
        from_1 = np.concatenate([[INF], prev[:-1]])
        from_2 = np.where(background, INF, np.concatenate([[INF, INF], prev[:-2]]))
        best, arg = stay, np.where(np.isfinite(stay), k, -1)
        for shift, cand in ((1, from_1), (2, from_2)):
            better = cand < best  # strictly: on a tie the earlier candidate stays
            best = np.where(better, cand, best)
            arg = np.where(better, k - shift, arg)
        add = np.where(background, bg_cost, cost[t - 1, np.maximum(step_of - 1, 0)])
        total[t] = best + add
        back[t] = arg
    last = n_ext - 1
    end = (
        last
        if (total[n_t, last] < total[n_t, last - 1] or not np.isfinite(total[n_t, last - 1]))
        else last - 1
    )
    state = end
    for t in range(n_t, 0, -1):
        if state % 2 == 1:
            y[t - 1, (state + 1) // 2 - 1] = 1
        state = int(back[t, state])
    return y, float(total[n_t, end])


def log_softmax(scores: np.ndarray, axis: int = 1) -> np.ndarray:
    """log_softmax over the steps (axis 1 of a (T, K) score matrix), computed stably."""
    scores = np.asarray(scores, dtype=np.float64)
    peak = scores.max(axis=axis, keepdims=True)
    shifted = scores - peak
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def localise(scores: np.ndarray) -> np.ndarray:
    """CrossTask inference on a (T, K) video-step score matrix: log-softmax over steps, DP on -O."""
    return dp(-log_softmax(scores, axis=1))[0]


def ground_truth(n_seconds: int, n_steps: int, segments: Iterable[tuple[int, float, float]]) -> np.ndarray:
    """Y[floor(start):ceil(end), step-1] = 1 for each annotated (1-based step, start_s, end_s)."""
    y = np.zeros((n_seconds, n_steps), dtype=np.uint8)
    for step, start, end in segments:
        y[int(math.floor(start)) : int(math.ceil(end)), step - 1] = 1
    return y


def recall_counts(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[int, int]:
    """(steps hit, steps annotated) for one video: a step is hit when its one predicted second lies
    inside one of its annotated seconds."""
    return int((y_true * y_pred).sum()), int((y_true.sum(axis=0) > 0).sum())


def task_recalls(counts: Mapping[str, Sequence[tuple[int, int]]]) -> dict[str, float]:
    """Per task: hits summed over its videos / annotated steps summed over its videos."""
    out = {}
    for task, pairs in counts.items():
        total = sum(n for _, n in pairs)
        if total:
            out[task] = sum(h for h, _ in pairs) / total
    return out


def zero_shot_split(
    task_videos: Mapping[str, Sequence[str]],
    val_videos: Mapping[str, Sequence[str]],
    primary: Iterable[str],
    n_train: int = 30,
    seed: int = 0,
) -> dict[str, list[str]]:
    """The test videos of CrossTask's protocol: validation videos dropped, then per primary task with
    more than `n_train` videos, `n_train` drawn for training (numpy's legacy generator seeded once, tasks
    in file order, as `np.random.seed(0)` before the reference's `random_split`); the rest is test."""
    primary = set(primary)
    rng = np.random.RandomState(seed)
    test: dict[str, list[str]] = {}
    for task, videos in task_videos.items():
        held = set(val_videos.get(task, ()))
        kept = [v for v in videos if v not in held]
        if task in primary and len(kept) > n_train:
            train = set(rng.choice(kept, n_train, replace=False).tolist())
            test[task] = [v for v in kept if v not in train]
    return test


def second_spans_ms(n_seconds: int, window_s: float) -> np.ndarray:
    """(T, 2) spans in ms: second t's window of `window_s` centred on the middle of the second (t + 0.5),
    clipped to the video, for pooling per-second video vectors the way training pooled clip spans."""
    centre = np.arange(n_seconds) + 0.5
    start = np.clip(centre - window_s / 2, 0, n_seconds)
    end = np.clip(centre + window_s / 2, 0, n_seconds)
    return np.stack([np.round(start * 1000), np.round(end * 1000)], axis=1).astype(np.int64)
