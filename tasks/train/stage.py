"""Prefect tasks of the training stage: one per pairs/text shard, one for the whole training run."""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from prefect import task

from models.encoders import cuda_device_ids, pick_device
from models.text import encode_sentences, load_minilm
from storage.layout import DataRoot
from tasks.artifacts import epoch_progress
from tasks.gpu_limit import gpu_slot
from tasks.train.config import TrainConfig
from tasks.train.pooling import ClipPooling
from tasks.train.prepare import build_pairs_shard, cache_text_shard
from tasks.train.run import train

_ENCODER_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _minilm() -> Any:
    return load_minilm()


def minilm_encode(texts: list[str]) -> np.ndarray:
    """MiniLM embeddings; one model per process, one caller at a time (it already uses every core)."""
    with _ENCODER_LOCK:
        return encode_sentences(texts, _minilm())


@task(name="clip-pairs-shard")
def pairs_shard(
    root_url: str, shard: int, clip_pool: Literal["max", "mean"] = "max", clip_context_s: float = 0.0
) -> dict[str, Any]:
    """`clip_pairs` shard k: pooled 2D+3D vectors of `clips` shard k over `frame_features` shard k."""
    return build_pairs_shard(DataRoot.from_any(root_url), shard, ClipPooling(clip_pool, clip_context_s))


@task(name="text-embeddings-shard")
def text_shard(root_url: str, shard: int) -> dict[str, Any]:
    """`text_embeddings` shard k: MiniLM vectors of `clip_pairs` shard k's captions, computed once."""
    return cache_text_shard(DataRoot.from_any(root_url), shard, minilm_encode)


@task(name="train-run")
def train_run(cfg: TrainConfig, root_url: str) -> dict[str, Any]:
    """The whole training run (epochs checkpointed; a rerun resumes after the last finished epoch).

    A progress artifact moves with every finished epoch, so the UI shows the run before it ends.
    """
    on_epoch = epoch_progress(f"train-{cfg.run_id or 'embedding'}", cfg.epochs)
    with gpu_slot(str(pick_device(cfg.device)), cuda_device_ids) as device:
        # On CUDA: the GPU of this machine held for the run (device is a runtime field, not hashed).
        run_cfg = cfg.model_copy(update={"device": device}) if device.startswith("cuda") else cfg
        result = train(run_cfg, DataRoot.from_any(root_url), on_epoch=on_epoch)
    on_epoch({"epoch": result["epochs"]})  # a run trained before (cached) shows as finished too
    return result
