"""The training stage's config (HowTo100M defaults; every field that changes the model is hashed)."""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tasks.common import config_hash, shard_hash

# Fields that change where or how fast we train, never what is learned.
RUNTIME_FIELDS = {"device", "run_id", "shards_in_memory", "threads"}


class TrainConfig(BaseModel):
    """Joint text-video embedding training: text side, loss, optimiser, batches and split."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: Literal["minilm", "word2vec", "learned"] = "minilm"
    word2vec_path: str | None = None  # required for text="word2vec": a word2vec .bin or .txt file
    loss: Literal["max_margin", "milnce", "infonce"] = "max_margin"
    d: int = Field(default=4096, ge=2)
    margin: float = 0.1
    negative_weighting: bool = True  # half of each anchor's negative mass on same-video clips
    temperature: float = Field(default=0.07, gt=0)
    neighbours: int = Field(default=1, ge=0)  # MIL-NCE positives: captions within this many clips
    epochs: int = Field(default=10, ge=1)
    lr: float = Field(default=1e-4, gt=0)
    lr_decay: float = Field(default=0.9, gt=0)  # multiplied into the learning rate after every epoch
    videos_per_batch: int = Field(default=32, ge=1)
    clips_per_video: int = Field(default=64, ge=1)
    heldout_fraction: float = Field(default=0.1, ge=0, lt=1)
    eval_max_clips: int = Field(default=5000, ge=2)
    standardise: bool = True  # per-dimension mean/std of training video vectors, kept in the model
    shuffle_pairs: bool = False  # control run: captions permuted across training clips
    max_words: int = Field(default=20, ge=1)
    min_word_count: int = Field(default=1, ge=1)  # learned vocabulary
    seed: int = 0
    device: str = "auto"
    # Hashed (bf16 rounds differently); "auto" is bf16 where the hardware has it natively (models/train_loop).
    precision: Literal["fp32", "bf16", "auto"] = "fp32"
    threads: int | None = None  # torch CPU threads; None leaves torch's default
    shards_in_memory: int = Field(default=16, ge=1)
    run_id: str | None = None  # default: derived from the config and the data snapshot


# Fields added after runs were first named: left out of the hash while at their default, so the run
# ids of earlier configs do not change.
_LATER_FIELDS = ("precision",)


def train_hash(cfg: TrainConfig) -> str:
    """Hash of what the run learns (runtime fields, and later fields at their default, left out)."""
    defaults = TrainConfig.model_fields
    unset = {f for f in _LATER_FIELDS if getattr(cfg, f) == defaults[f].default}
    return config_hash(cfg, exclude=RUNTIME_FIELDS | unset)


def run_id_for(cfg: TrainConfig, data_hash: str) -> str:
    """The run's id: given, or config + data hash, so rerunning the same thing resumes the same run."""
    return cfg.run_id or f"run-{shard_hash(train_hash(cfg), data_hash)[:12]}"


def run_shard_number(run_id: str) -> int:
    """The `train_metrics` shard that holds a run's rows (a stable number from its id)."""
    return int.from_bytes(hashlib.sha1(run_id.encode()).digest()[:3], "big")
