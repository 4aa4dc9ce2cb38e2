"""Clip arrays for the FAC embedding: from a data root (clip_pairs + audio_features + captions), or synthetic.

From a root: the video input is each clip's stored pooled 2D+3D vector (clip_pairs); the audio input is
the video's per-second audio rows max-pooled over the clip span (rows int(s) .. int(e)+1, as the frame
features), L2'd, none for a clip that starts after the track ends; text is the cached sentence-encoder
vector (text_embeddings) when present, else a weight-free hashed bag of words. Each clip's caption bag
is its own caption and its neighbours' (K=3).
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from storage.layout import DataRoot
from storage.shards import list_markers, read_shard
from tasks.audio.fac_train import MMData
from tasks.audio.rows import WITH_ROWS
from tasks.train.data import vectors_to_numpy
from tasks.train.pooling import span_rows
from tasks.train.prepare import no_pairs_message, text_cache
from tasks.train.split import is_heldout

BAG = 3  # own caption and the previous and next one of the same video
HASH_DIM = 512


def hashed_bow(text: str, dim: int = HASH_DIM) -> np.ndarray:
    """A signed hashed bag of lower-cased words, L2'd: a text vector that needs no weights."""
    out = np.zeros(dim, np.float32)
    for word in re.findall(r"[\w']+", text.lower()):
        h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
        out[h % dim] += 1.0 if (h >> 32) & 1 else -1.0
    return out / max(float(np.linalg.norm(out)), 1e-12)


def _audio_rows(root: DataRoot) -> dict[str, np.ndarray]:
    """video_id -> (seconds, dim) audio rows of one encoder for the whole root (the first by name), for
    videos with audio. Chosen per shard, a root whose shards were made by two encoders (an `audio run
    --audio-encoder` rerun that stopped part way) mixed 192- and 2048-wide rows, and FAC failed on them."""
    tables = []
    for marker in list_markers(root, "audio_features"):
        table = read_shard(root, "audio_features", marker.shard)
        if table is not None and table.num_rows:
            tables.append(
                table.filter(pc.is_in(table.column("status"), value_set=pa.array(WITH_ROWS, pa.string())))
            )
    models = sorted({m for table in tables for m in table.column("model").to_pylist()})
    by_video: dict[str, np.ndarray] = {}
    for table in tables:
        table = table.filter(pc.equal(table.column("model"), models[0]))
        if table.num_rows == 0:
            continue
        table = table.sort_by([("video_id", "ascending"), ("idx", "ascending")])
        vectors = vectors_to_numpy(table.column("vector"), np.float32)
        ids = table.column("video_id").to_numpy(zero_copy_only=False)
        bounds = np.r_[0, np.flatnonzero(ids[1:] != ids[:-1]) + 1, len(ids)]  # one run of rows a video
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            by_video[str(ids[lo])] = vectors[lo:hi]
    return by_video


def load_root(root: DataRoot) -> tuple[MMData, np.ndarray]:
    """Every clip of every finished clip_pairs shard as MMData, and each clip's video id."""
    audio = _audio_rows(root)
    videos, vids, captions, spans, texts, cached = [], [], [], [], [], []
    for marker in list_markers(root, "clip_pairs"):
        table = read_shard(root, "clip_pairs", marker.shard)
        if table is None or table.num_rows == 0:
            continue
        table = table.sort_by([("video_id", "ascending"), ("idx", "ascending")])
        videos.append(vectors_to_numpy(table.column("vector"), np.float32))
        vids += table.column("video_id").to_pylist()
        captions += table.column("text").to_pylist()
        spans += list(
            zip(table.column("start_ms").to_pylist(), table.column("end_ms").to_pylist(), strict=True)
        )
        emb = text_cache(root, marker.shard)
        lookup = {}
        if emb is not None and emb.num_rows:
            vecs = vectors_to_numpy(emb.column("vector"), np.float32)
            lookup = {c: vecs[i] for i, c in enumerate(emb.column("clip_id").to_pylist())}
        cached += [lookup.get(c) for c in table.column("clip_id").to_pylist()]
    if not videos:
        raise FileNotFoundError(no_pairs_message(root))
    use_cache = all(c is not None for c in cached)
    texts = [c if use_cache else hashed_bow(t) for c, t in zip(cached, captions, strict=True)]
    text = np.stack(texts).astype(np.float32)
    n = len(vids)
    dim_a = next((v.shape[1] for v in audio.values()), 1)
    audio_in = np.zeros((n, dim_a), np.float32)
    has_audio = np.zeros(n, bool)
    for i, (vid, (start, end)) in enumerate(zip(vids, spans, strict=True)):
        rows = audio.get(vid)
        # A clip that starts after the track has ended has no audio: span_rows would clamp it onto the
        # track's last second, one sound for every such clip, each then the other's audio "positive".
        if rows is None or len(rows) == 0 or int(start) >= len(rows) * 1000:
            continue
        first, last = span_rows(int(start), int(end), 1.0, len(rows))
        pooled = rows[first:last].max(axis=0)
        audio_in[i] = pooled / max(float(np.linalg.norm(pooled)), 1e-12)
        has_audio[i] = True
    bags = np.zeros((n, BAG, text.shape[1]), np.float32)
    mask = np.zeros((n, BAG), bool)
    for i in range(n):
        for slot, j in enumerate((i, i - 1, i + 1)):
            if 0 <= j < n and vids[j] == vids[i]:
                bags[i, slot], mask[i, slot] = text[j], True
    data = MMData(np.concatenate(videos), audio_in, has_audio, bags, mask, captions)
    return data, np.asarray(vids, dtype=object)


def split_heldout(data: MMData, video_ids: np.ndarray, fraction: float) -> tuple[MMData, MMData]:
    """(train, held-out) by video id hash, the training stage's rule."""
    held = np.array([is_heldout(str(v), fraction) for v in video_ids], dtype=bool)
    return data.take(np.flatnonzero(~held)), data.take(np.flatnonzero(held))


def synthetic(
    n_videos: int, clips_per_video: int, n_steps: int, seed: int, dims: tuple[int, int, int] = (64, 32, 48),
    noise: float = 0.6, missing_audio: float = 0.2,
) -> MMData:  # fmt: skip
    """Videos as sequences of steps: each modality = its own step prototype + noise (video also a shared
    direction), so audio agrees with video and text only through the step. Some clips lack audio."""
    rng = np.random.default_rng(seed)
    dv, da, dt = dims
    proto = [rng.standard_normal((n_steps, d)).astype(np.float32) for d in dims]
    shared = rng.standard_normal(dv).astype(np.float32)
    steps = rng.integers(0, n_steps, (n_videos, clips_per_video)).reshape(-1)
    n = len(steps)
    video = 2.0 * shared + proto[0][steps] + noise * rng.standard_normal((n, dv)).astype(np.float32)
    audio = proto[1][steps] + noise * rng.standard_normal((n, da)).astype(np.float32)
    has_audio = rng.uniform(size=n) >= missing_audio
    audio[~has_audio] = 0.0
    text = proto[2][steps] + 0.1 * rng.standard_normal((n, dt)).astype(np.float32)
    return MMData(
        video, audio, has_audio, text[:, None, :], np.ones((n, 1), bool), [f"step {s}" for s in steps]
    )
