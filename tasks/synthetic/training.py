"""A synthetic narrated-video data root (clips + frame_features shards) so training runs anywhere.

Each video shows a sequence of steps; a step is a caption sentence and a visual prototype. Frame rows
are one shared direction plus a small step-specific part plus noise, like random-weight CNN features
whose scenes differ by only a few hundredths of cosine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from storage.layout import DataRoot
from storage.shards import write_shard
from tasks.train.pooling import MODEL_FPS, MODELS

_VERBS = ("cut", "wash", "stir", "paint", "fold", "pour", "sand", "glue", "peel", "tighten")
_OBJECTS = (
    "the red pepper",
    "a blue bowl",
    "the wooden shelf",
    "a green towel",
    "the lemon",
    "the brass screw",
    "a paper box",
    "the white wall",
)


def step_texts(n_steps: int) -> list[str]:
    """Distinct caption sentences, one per step."""
    texts = [f"{v} {o}" for o in _OBJECTS for v in _VERBS]
    if n_steps > len(texts):
        raise ValueError(f"at most {len(texts)} synthetic steps")
    return texts[:n_steps]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def write_synthetic_root(
    root: DataRoot | str,
    n_videos: int = 40,
    n_steps: int = 24,
    clips_per_video: int = 8,
    shards: int = 2,
    dim: int = 2048,
    contrast: float = 0.25,
    noise: float = 0.15,
    clip_s: float = 4.0,
    seed: int = 0,
    features_config: Mapping[str, Any] | None = None,
    captions: Sequence[str] | None = None,
) -> DataRoot:
    """Write `clips` and `frame_features` shards (with markers) for synthetic videos; returns the root.

    `features_config`: recorded in the frame_features markers as the extractor's config, so benchmark
    evaluation with `reuse_root_features` trusts these rows (unrecorded ones it never reuses).
    `captions`: the steps' sentences instead of `step_texts(n_steps)` (one per step), e.g. of unequal
    lengths, as real captions are."""
    root = DataRoot.from_any(root)
    rng = np.random.default_rng(seed)
    texts = step_texts(n_steps) if captions is None else list(captions)
    if len(texts) != n_steps:
        raise ValueError(f"{len(texts)} captions for {n_steps} steps")
    common = {m: rng.standard_normal(dim) for m in MODELS}
    protos = {m: rng.standard_normal((n_steps, dim)) for m in MODELS}
    per_shard = -(-n_videos // shards)
    for shard in range(shards):
        clip_rows: list[dict[str, object]] = []
        feat_rows: list[dict[str, object]] = []
        vectors: list[np.ndarray] = []
        for v in range(shard * per_shard, min(n_videos, (shard + 1) * per_shard)):
            vid = f"syn{v:05d}"
            steps = rng.integers(0, n_steps, clips_per_video)
            duration_s = clips_per_video * clip_s
            for i, step in enumerate(steps):
                clip_rows.append(
                    {
                        "clip_id": f"{vid}_{i:04d}",
                        "video_id": vid,
                        "task_id": f"task{step % 4}",
                        "category": "Demo",
                        "idx": i,
                        "start_ms": int(i * clip_s * 1000),
                        "end_ms": int((i + 1) * clip_s * 1000),
                        "text": texts[step],
                        "text_no_stopwords": texts[step],
                        "n_words": len(texts[step].split()),
                        "crawl_id": "synthetic",
                    }
                )
            for model in MODELS:
                n_rows = int(duration_s * MODEL_FPS[model])
                t = (np.arange(n_rows) + 0.5) / MODEL_FPS[model]
                step_at = steps[np.minimum((t // clip_s).astype(int), clips_per_video - 1)]
                x = (
                    common[model]
                    + contrast * protos[model][step_at]
                    + noise * rng.standard_normal((n_rows, dim))
                )
                vectors.append(_unit(x).astype(np.float16))
                for r in range(n_rows):
                    feat_rows.append(
                        {
                            "video_id": vid,
                            "model": model,
                            "idx": r,
                            "t_start_ms": int(r / MODEL_FPS[model] * 1000),
                            "t_end_ms": int((r + 1) / MODEL_FPS[model] * 1000),
                            "random_weights": True,
                            "status": "ok",
                            "error": None,
                        }
                    )
        clips = pa.Table.from_pylist(clip_rows)
        write_shard(
            root,
            "clips",
            shard,
            clips,
            config_hash="synthetic",
            code_version="synthetic",
            rows_in=clips.num_rows,
        )
        if feat_rows:
            matrix = np.concatenate(vectors)
            column = pa.ListArray.from_arrays(
                pa.array(np.arange(len(matrix) + 1, dtype=np.int32) * dim), pa.array(matrix.reshape(-1))
            )
            feats = pa.Table.from_pylist(feat_rows).append_column("vector", column)
            write_shard(
                root,
                "frame_features",
                shard,
                feats,
                config_hash="synthetic",
                code_version="synthetic",
                rows_in=feats.num_rows,
                config=features_config,
            )
    return root
