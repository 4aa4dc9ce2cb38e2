"""The training stage's config (HowTo100M defaults; every field that changes the model is hashed)."""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tasks.common import config_hash, shard_hash
from tasks.config_types import Device, LocalFile
from tasks.train.pooling import ClipPooling

# `howto train compare`'s methods by default (tasks/train/compare.py). Here, torch-free, so that the CLI's
# --help shows them without loading torch.
DEFAULT_METHODS = ("max_margin", "infonce", "howto100m", "milnce", "videoclip", "videoclip_random", "tvts")

# Fields that change where or how fast we train, never what is learned.
RUNTIME_FIELDS = {"device", "run_id", "shards_in_memory", "threads"}


Objective = Literal["pairs", "howto100m", "milnce", "videoclip", "tvts"]
TVTS_TEMPERATURE = 0.05  # objective tvts's default temperature (TVTS's NormSoftmaxLoss)
OBJECTIVES: tuple[str, ...] = ("pairs", "howto100m", "milnce", "videoclip", "tvts")


class TrainConfig(BaseModel):
    """Joint text-video embedding training: text side, objective, optimiser, batches and split.

    `objective` is the seed method's sampling and loss: "pairs" trains on caption lines as stored in
    `clip_pairs` with `loss`; "howto100m" (captions merged to >= 5 s at each draw, with replacement,
    the reference's loss weighting), "milnce" (one widened clip per video, bags of K captions),
    "videoclip" (overlapping text and video windows, symmetric InfoNCE) and "tvts" (windows of 4
    clips, transcript sorting + contrastive) sample spans from the stored frame rows at every epoch.
    """

    # No inf or NaN anywhere (pydantic takes both for a float by default): `--lr inf` passed `gt=0` and
    # `--margin nan` had no bound, and either trained a model of NaN weights to the end without a word.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    text: Literal["minilm", "word2vec", "learned"] = "minilm"
    word2vec_path: LocalFile | None = None  # required for text="word2vec": a word2vec .bin or .txt file
    objective: Objective = "pairs"
    # Loss of objective "pairs" ("milnce" alone selects the published objective "milnce").
    loss: Literal["max_margin", "milnce", "milnce_inbatch", "infonce"] = "max_margin"
    d: int = Field(default=4096, ge=2)
    margin: float = 0.1
    negative_weighting: bool = True  # half of each anchor's negative mass on same-video clips
    temperature: float = Field(default=0.07, gt=0)  # objective tvts: TVTS_TEMPERATURE unless given
    neighbours: int = Field(default=1, ge=0)  # MIL-NCE positives: captions within this many clips
    epochs: int = Field(default=10, ge=1)
    lr: float = Field(default=1e-4, gt=0)
    lr_decay: float = Field(default=0.9, gt=0)  # schedule epoch_decay: multiplied in after every epoch
    # The papers' optimiser recipes (README, "Learning-rate schedules"). epoch_decay is HowTo100M's; the
    # warm-up schedules run per optimiser step, W warm-up steps then cosine (MIL-NCE) or linear
    # (VideoCLIP) decay to 0 at the run's last step. Steps, not a fraction of the run: the papers give
    # steps, and the run's step count (epochs x the first epoch's batches) is only known once its data is
    # read; a warm-up not shorter than the run is refused then, in one line that gives the count.
    schedule: Literal["epoch_decay", "warmup_cosine", "warmup_linear"] = "epoch_decay"
    warmup_steps: int = Field(default=0, ge=0)
    clip_norm: float | None = Field(default=None, gt=0)  # global gradient norm (VideoCLIP: 2.0)
    adam_betas: tuple[float, float] = (0.9, 0.999)  # VideoCLIP: (0.9, 0.98)
    weight_decay: float = Field(default=0.0, ge=0)  # > 0: AdamW's decoupled decay (TVTS: AdamW at 0)
    videos_per_batch: int = Field(default=32, ge=1)
    clips_per_video: int = Field(default=64, ge=1)
    heldout_fraction: float = Field(default=0.1, ge=0, lt=1)
    eval_max_clips: int = Field(default=5000, ge=2)
    standardise: bool = True  # per-dimension mean/std of training video vectors, kept in the model
    shuffle_pairs: bool = False  # control run: captions permuted across training clips
    max_words: int = Field(default=20, ge=1)
    min_word_count: int = Field(default=1, ge=1)  # learned vocabulary
    seed: int = Field(default=0, ge=0)  # numpy's generators take no negative seed
    device: Device = "auto"
    # Hashed (bf16 rounds differently); "auto" is bf16 where the hardware has it natively (models/train_loop).
    precision: Literal["fp32", "bf16", "auto"] = "fp32"
    threads: int | None = None  # torch CPU threads; None leaves torch's default
    shards_in_memory: int = Field(default=16, ge=1)
    # default: derived from the config and the data snapshot; else one folder name under train/ (checked
    # here too, so `--set train.run_id=../x` is refused before any stage runs).
    run_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")
    # Reference-fidelity switches (the howto100m preset sets them all).
    text_hidden: int | None = Field(default=None, ge=1)  # word sides' pooling width; None: 2048
    masked_word_max: bool = True  # False: pads join the max over words (the reference)
    stop_words: Literal["keep", "glasgow"] = "keep"  # "glasgow": the reference's list is left out
    drop_last: bool = False  # drop an epoch's last partial batch
    # Seed-method samplers.
    min_span_s: float = Field(default=5.0, ge=0)  # howto100m merges lines, milnce widens clips to this
    bag_size: int = Field(default=4, ge=1)  # milnce: captions in a clip's bag of positives
    video_encoder: Literal["pooled", "transformer"] = "pooled"  # videoclip: per-second token tower
    retrieval_batches: bool = False  # videoclip: batches of nearest videos, rebuilt every epoch
    sort_weight: float = Field(default=2.0, ge=0)  # tvts: weight of the sorting cross-entropy
    sort_windows: int = Field(default=4, ge=1)  # tvts: windows of 4 clips per video per batch
    # Clip vectors (clip_pairs, sampled spans, benchmark segments): HowTo100M max-pools each line's own
    # span; "mean" over the line widened by clip_context_s each side reads the step around it.
    clip_pool: Literal["max", "mean"] = "max"
    clip_context_s: float = Field(default=0.0, ge=0, le=60)

    @model_validator(mode="before")
    @classmethod
    def _published_milnce(cls, data: object) -> object:
        # loss "milnce" names MIL-NCE as published, which is a sampler as much as a loss.
        if (
            isinstance(data, dict)
            and data.get("loss") == "milnce"
            and data.get("objective", "pairs") == "pairs"
        ):
            return {**data, "objective": "milnce"}
        return data

    @model_validator(mode="before")
    @classmethod
    def _tvts_temperature(cls, data: object) -> object:
        # TVTS's NormSoftmax runs at tau 0.05 (the README's objective table says so); the shared default
        # 0.07 is CLIP's. A temperature given explicitly is kept.
        if isinstance(data, dict) and data.get("objective") == "tvts" and "temperature" not in data:
            return {**data, "temperature": TVTS_TEMPERATURE}
        return data

    @model_validator(mode="after")
    def _fits_objective(self) -> TrainConfig:
        if self.video_encoder == "transformer" and self.objective != "videoclip":
            raise ValueError("video_encoder 'transformer' is for objective 'videoclip'")
        if self.retrieval_batches and self.objective != "videoclip":
            raise ValueError("retrieval_batches is for objective 'videoclip'")
        if self.warmup_steps and self.schedule == "epoch_decay":
            raise ValueError("warmup_steps is for schedule 'warmup_cosine' or 'warmup_linear'")
        if not all(0 <= b < 1 for b in self.adam_betas):
            raise ValueError(f"adam_betas {list(self.adam_betas)}: each must be in [0, 1)")
        return self

    @property
    def pooling(self) -> ClipPooling:
        return ClipPooling(self.clip_pool, self.clip_context_s)


# Fields added after runs were first named: left out of the hash while at their default, so the run
# ids of earlier configs do not change.
_LATER_FIELDS = (
    "objective", "text_hidden", "masked_word_max", "stop_words", "drop_last", "min_span_s", "bag_size",
    "video_encoder", "retrieval_batches", "sort_weight", "sort_windows", "precision", "clip_pool",
    "clip_context_s", "schedule", "warmup_steps", "clip_norm", "adam_betas", "weight_decay",
)  # fmt: skip

# Each seed method's recipe, applied over TrainConfig's defaults (and under the caller's overrides).
PRESETS: dict[str, dict[str, object]] = {
    # HowTo100M as released: word2vec, raw video vectors, text width d, unmasked word max, stop words
    # out, lines merged to >= 5 s at each draw, 32 videos x 64 draws with replacement, 15 epochs.
    "howto100m": {
        "objective": "howto100m", "text": "word2vec", "standardise": False, "masked_word_max": False,
        "stop_words": "glasgow", "min_span_s": 5.0, "videos_per_batch": 32, "clips_per_video": 64,
        "drop_last": True, "epochs": 15, "d": 4096, "lr": 1e-4, "lr_decay": 0.9, "margin": 0.1,
        "negative_weighting": True, "max_words": 20,
    },
    # MIL-NCE: one >= 5 s clip per video per batch, bags of 4 neighbouring captions.
    "milnce": {"objective": "milnce", "bag_size": 4, "min_span_s": 5.0, "temperature": 0.07},
    # VideoCLIP: 16 overlapping pairs per video, retrieval-augmented batches after the first epoch.
    "videoclip": {"objective": "videoclip", "clips_per_video": 16, "retrieval_batches": True, "temperature": 0.07},
    # TVTS: windows of 4 clips, sorting cross-entropy x2 plus NormSoftmax at tau 0.05.
    "tvts": {"objective": "tvts", "sort_weight": 2.0, "temperature": 0.05},
}  # fmt: skip


def preset(name: str, **overrides: object) -> TrainConfig:
    """TrainConfig for a seed method's recipe, with overrides; the howto100m text width follows d."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")
    fields = {**PRESETS[name], **overrides}
    if name == "howto100m" and "text_hidden" not in overrides:
        fields["text_hidden"] = fields["d"]
    return TrainConfig(**fields)  # type: ignore[arg-type]


# Bumped when an objective's code changes what a run learns with the same config: the run id then changes,
# so a data root's finished runs of the old code are not taken for this code's (`train compare` reuses
# finished runs by id). An objective at revision 1 hashes as before, keeping its finished runs.
# tvts 2: its contrastive term is NormSoftmax's sum of the two directions, as TVTS's (it was their mean).
# tvts 3: its sorting head is TVTS's SortTransformer at 256 wide, 8 heads, GELU, final LayerNorm (was 128, 4,
# ReLU, none), classifier from zero.
# videoclip 2: the lite tower's held-out recall (its log, which `train compare` and `howto train` read back
# from a finished run) is measured on each clip's mean of per-second tokens, as it trained; it was measured
# on clip_pairs' pooled vectors (max by default). The weights learned are the same; the transformer tower's
# runs, whose log did not change, get new ids too (the revision is the objective's).
OBJECTIVE_REVISIONS: dict[str, int] = {"tvts": 3, "videoclip": 2}
# The same for a text side. learned 2: its vocabulary holds the training split's words only (it held the
# held-out captions' too, tasks/train/run.py `_text_side`): a run of the old vocabulary neither resumes
# under this code (its table has other rows) nor is read back as this code's.
TEXT_REVISIONS: dict[str, int] = {"learned": 2}


def train_hash(cfg: TrainConfig) -> str:
    """Hash of what the run learns (runtime fields, and later fields at their default, left out)."""
    defaults = TrainConfig.model_fields
    unset = {f for f in _LATER_FIELDS if getattr(cfg, f) == defaults[f].default}
    return revised(config_hash(cfg, exclude=RUNTIME_FIELDS | unset), cfg.objective, cfg.text)


def revised(config_digest: str, objective: str, text: str = "minilm") -> str:
    """A run's config hash chained with its objective's and its text side's revisions (each unchanged at
    revision 1)."""
    revision = OBJECTIVE_REVISIONS.get(objective, 1)
    digest = config_digest if revision == 1 else shard_hash(config_digest, f"{objective} revision {revision}")
    text_revision = TEXT_REVISIONS.get(text, 1)
    return digest if text_revision == 1 else shard_hash(digest, f"text {text} revision {text_revision}")


def run_id_for(cfg: TrainConfig, data_hash: str) -> str:
    """The run's id: given, or config + data hash, so rerunning the same thing resumes the same run."""
    return cfg.run_id or f"run-{shard_hash(train_hash(cfg), data_hash)[:12]}"


def run_shard_number(run_id: str) -> int:
    """The `train_metrics` shard that holds a run's rows (a stable number from its id)."""
    return int.from_bytes(hashlib.sha1(run_id.encode()).digest()[:3], "big")
