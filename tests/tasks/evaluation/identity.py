"""An identity embedder and fabricated benchmark files/features on which it must score perfectly."""

from __future__ import annotations

import hashlib

import numpy as np

from tasks.train.pooling import MODEL_FPS, MODELS, REFERENCE_POOLING, VideoFeatures

DIM = 64


def vec(sentence: str) -> np.ndarray:
    """A fixed spiky non-negative unit vector per sentence (sentences barely overlap)."""
    seed = int.from_bytes(hashlib.sha1(sentence.encode()).digest()[:4], "big")
    x = np.abs(np.random.default_rng(seed).standard_normal(DIM)) ** 6
    return (x / np.linalg.norm(x)).astype(np.float32)


def _l2(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class IdentityEmbedder:
    """Video: the 2D half of the pooled input, L2'd. Text: vec(sentence)."""

    pooling = REFERENCE_POOLING
    video_input = "pooled"

    def video(self, x: np.ndarray) -> np.ndarray:
        return _l2(np.asarray(x, np.float32)[:, :DIM])

    def text(self, sentences: list[str]) -> np.ndarray:
        return np.stack([vec(s) for s in sentences])


def fake_video(duration_s: float, segments: list[tuple[float, float, str]]) -> VideoFeatures:
    """Feature rows whose 2D rows inside a segment are vec(its sentence) and zero elsewhere; 3D rows zero."""
    rows = {}
    for model in MODELS:
        n = int(duration_s * MODEL_FPS[model])
        x = np.zeros((n, DIM), np.float32)
        if model == MODELS[0]:
            for start, end, sentence in segments:
                for k in range(n):
                    if start <= k / MODEL_FPS[model] < end:
                        x[k] = vec(sentence)
        rows[model] = x
    return VideoFeatures(rows)
