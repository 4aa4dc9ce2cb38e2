"""VideoCLIP's retrieval-augmented batches: videos grouped by a nearest-neighbour index over video vectors."""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

EXACT_MAX = 50_000  # below this many videos an exact search is cheap; above it FAISS (when installed)
NEIGHBOURS_PER_SLOT = 2  # VideoCLIP: 64 hits per seed for batches of 32 videos


def _faiss():  # type: ignore[no-untyped-def]
    try:
        import faiss  # type: ignore[import-not-found]
    except ImportError:
        return None
    return faiss


def nearest_neighbours(vectors: np.ndarray, k: int) -> np.ndarray:
    """(n, min(k, n)) indices of each row's nearest rows by L2 distance, itself first.

    Exact (a matrix product) up to EXACT_MAX rows; beyond that FAISS IVFFlat (VideoCLIP: 512 lists)
    when faiss is installed, else exact in row blocks. FAISS searches only the query's nearest list
    (nprobe 1, as VideoCLIP's), and pads a row with -1 where that list holds fewer than k vectors:
    callers drop negative indices, as MMPT's `search_by_video_ids` does.
    """
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(x)
    k = min(k, n)
    faiss = _faiss() if n > EXACT_MAX else None
    if faiss is not None:
        quantizer = faiss.IndexFlatL2(x.shape[1])
        index = faiss.IndexIVFFlat(quantizer, x.shape[1], min(512, n // 39))
        index.train(x[np.random.default_rng(0).choice(n, min(n, 24_576), replace=False)])
        index.add(x)
        _, hits = index.search(x, k)
        return np.asarray(hits, dtype=np.int64)
    sq = (x * x).sum(1)
    out = np.empty((n, k), dtype=np.int64)
    for lo in range(0, n, 4096):
        d = sq[lo : lo + 4096, None] - 2 * x[lo : lo + 4096] @ x.T + sq[None, :]
        d[np.arange(len(d)), np.arange(lo, lo + len(d))] = -np.inf  # itself first, ties or not
        part = np.argpartition(d, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(d, part, 1).argsort(1, kind="stable")
        out[lo : lo + 4096] = np.take_along_axis(part, order, 1)
    return out


def retrieval_batches(
    vectors: np.ndarray, rng: np.random.Generator, videos_per_batch: int, k: int | None = None
) -> list[np.ndarray]:
    """Batches of video indices: |V| / videos_per_batch random seed videos, each with its k nearest
    videos (the seed first, duplicates dropped), cut to `videos_per_batch` at random if longer.

    k defaults to twice the batch (VideoCLIP's 64 for 32): a fixed 64 would make every batch of a
    small set a random draw from nearly all videos, which is no retrieval at all.
    """
    n = len(vectors)
    if n == 0:
        return []
    k = NEIGHBOURS_PER_SLOT * videos_per_batch if k is None else k
    hits = nearest_neighbours(vectors, k + 1)
    batches = []
    for seed in rng.choice(n, max(1, n // videos_per_batch), replace=False):
        # FAISS pads a short result with -1, which as an index would name the last video.
        group = list(dict.fromkeys([int(seed), *(h for h in hits[seed].tolist() if h >= 0)]))
        if len(group) > videos_per_batch:
            rest = rng.choice(group[1:], videos_per_batch - 1, replace=False)
            group = [group[0], *rest.tolist()]
        batches.append(np.asarray(group, dtype=np.int64))
    return batches
