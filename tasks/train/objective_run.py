"""Training runs of the seed methods (HowTo100M, MIL-NCE, VideoCLIP, TVTS): spans drawn every epoch.

`ObjectiveTrainer` is the plain `Trainer` (checkpoints, resume, metrics, report, held-out evaluation)
with the objective's own batches, towers and loss; every objective ends in the same two towers over
pooled span vectors and captions, so evaluation and search treat all runs alike (VideoCLIP's video towers
are given each clip's per-second tokens, or their mean, as they trained: `clip_tokens.video_input`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from models.embedding import JointEmbedding, build_model
from models.losses import build_loss
from models.sorting import TranscriptSorter
from models.text import Vocabulary
from models.train_loop import Batch, EpochStats, train_epoch
from storage.layout import DataRoot
from tasks.train.batches import (
    MAX_WINDOW_TOKENS,
    Draw,
    chunks,
    howto100m_batches,
    milnce_batches,
    pad_sequences,
    tvts_batches,
    videoclip_batches,
    videoclip_text,
    window_tokens,
)
from tasks.train.clip_tokens import clip_tokens
from tasks.train.config import TrainConfig
from tasks.train.data import Pairs, group_batches, make_batch, prefetch
from tasks.train.retrieval import retrieval_batches
from tasks.train.run import Trainer, TrainingDataError
from tasks.train.samplers import SORT_WINDOW, TEXT_TOKENS, token_counts, videoclip_pair
from tasks.train.stopwords import GLASGOW_STOP_WORDS
from tasks.train.videos import VideoLines, VideoStore, load_store

log = logging.getLogger(__name__)

WORD2VEC_HELP = (
    "get GoogleNews-vectors-negative300.bin (word2vec's GoogleNews vectors; also in HowTo100M's "
    "metadata_eval.zip) and pass --word2vec PATH"
)


def needs_objective_trainer(cfg: TrainConfig) -> bool:
    """True unless the config is a plain caption-line run that the base Trainer covers as before."""
    return (
        cfg.objective != "pairs"
        or cfg.drop_last
        or cfg.stop_words != "keep"
        or cfg.text_hidden is not None
        or not cfg.masked_word_max
    )


def drop_stop_words(
    vocab: Vocabulary, vectors: torch.Tensor | None
) -> tuple[Vocabulary, torch.Tensor | None]:
    """The vocabulary without the reference's stop words: encoding then drops them like unknown words
    (the same as training on stop-word-free captions, before the cut to max_words)."""
    keep = [i for i, w in enumerate(vocab.words) if w.lower() not in GLASGOW_STOP_WORDS]
    words = Vocabulary([vocab.words[i] for i in keep], lowercase=vocab.lowercase)
    if vectors is None:
        return words, None
    return words, torch.cat([vectors[:1], vectors[[i + 1 for i in keep]]])


@dataclass
class WindowBatch(Batch):
    """TVTS: the clips' pairs plus each window's per-second tokens (W, T, d_video) and real-token mask."""

    tokens: torch.Tensor
    real: torch.Tensor


class ObjectiveTrainer(Trainer):
    """A Trainer whose batches, towers and loss follow `cfg.objective`."""

    def __init__(self, cfg: TrainConfig, root: DataRoot) -> None:
        if cfg.text == "word2vec" and (not cfg.word2vec_path or not os.path.isfile(cfg.word2vec_path)):
            where = f"{cfg.word2vec_path}: no such file" if cfg.word2vec_path else "no word2vec file given"
            raise TrainingDataError(f"{where}; the word2vec text side needs it: {WORD2VEC_HELP}")
        super().__init__(cfg, root)
        if cfg.objective == "tvts" and self.dist.enabled:
            # Its steps call the towers and the sorting head directly, past DDP's gradient averaging.
            raise TrainingDataError("objective tvts trains in one process; run it without torchrun")
        if cfg.stop_words == "glasgow" and self.vocab is not None:
            self.vocab, self.word_vectors = drop_stop_words(self.vocab, self.word_vectors)
        self._text_cache: dict[str, np.ndarray] = {}
        self._stats: tuple[torch.Tensor, torch.Tensor, int, int] | None = None
        self._index: dict[str, np.ndarray] = {}  # VideoCLIP: per-video retrieval vectors
        self._epoch = 0
        self._store: VideoStore | None = None  # the training videos, when they fit in one window

    # -- text ---------------------------------------------------------------------------------------
    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """Token ids (word sides) or MiniLM vectors, each distinct caption encoded once per run. A caption's
        vector is the same whichever captions are encoded with it, so this cache (empty again in a resumed
        run) saves time and changes nothing."""
        if self.vocab is not None:
            return self.vocab.encode_batch(texts, self.cfg.max_words)
        missing = sorted({t for t in texts if t not in self._text_cache})
        if missing:
            from tasks.train.stage import minilm_encode

            if len(self._text_cache) > 500_000:
                self._text_cache.clear()
            self._text_cache.update(zip(missing, minilm_encode(missing), strict=True))
        return torch.from_numpy(np.stack([self._text_cache[t] for t in texts]))

    def text_of(self, pairs: Pairs, rows: np.ndarray) -> torch.Tensor:
        if self.vocab is None and pairs.text is not None:
            return torch.from_numpy(pairs.text[rows])  # the MiniLM cache, as the base Trainer
        return self.encode_texts([pairs.texts[i] for i in rows])

    @property
    def max_text_tokens(self) -> int:
        """VideoCLIP's 64 text tokens, or the word sides' max_words when that is fewer."""
        return TEXT_TOKENS[1] if self.vocab is None else min(TEXT_TOKENS[1], self.cfg.max_words)

    # -- batches ------------------------------------------------------------------------------------
    def windows(self, epoch: int, rng: np.random.Generator) -> Iterator[list[VideoLines]]:
        """The training videos, a window of shards at a time, shards in a seeded order."""
        order = [int(s) for s in rng.permutation(self.shards)]
        shuffle = self.cfg.seed if self.cfg.shuffle_pairs else None
        if len(order) <= self.cfg.shards_in_memory:
            # Everything fits in one window: read it once per run (the control's permutation is
            # fixed per shard, so the same store serves every epoch) and keep per-second tokens.
            if self._store is None:
                self._store = load_store(
                    self.root, sorted(order), "train", self.cfg.heldout_fraction, shuffle, self.cfg.pooling
                )
            yield [self._store.videos[i] for i in rng.permutation(len(self._store))]
            return
        for start in range(0, len(order), self.cfg.shards_in_memory):
            part = order[start : start + self.cfg.shards_in_memory]
            yield load_store(
                self.root, part, "train", self.cfg.heldout_fraction, shuffle, self.cfg.pooling
            ).videos

    def batches(self, epoch: int) -> Iterator[Batch]:
        self._epoch = epoch
        if self.cfg.objective == "pairs":
            return self._pair_batches(epoch)
        return self._objective_batches(epoch)

    def _pair_batches(self, epoch: int) -> Iterator[Batch]:
        rng = np.random.default_rng([self.cfg.seed, epoch])
        order = [int(s) for s in rng.permutation(self.shards)]
        for window, rows_of in self.pair_windows(order):
            for rows in group_batches(
                window.video_ids[rows_of], rng, self.cfg.videos_per_batch, self.cfg.clips_per_video,
                self.cfg.drop_last,
            ):  # fmt: skip
                yield make_batch(window, rows_of[rows], self.text_of)

    def _objective_batches(self, epoch: int) -> Iterator[Batch]:
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, epoch])
        min_ms = int(cfg.min_span_s * 1000)
        for videos in self.windows(epoch, rng):
            if not videos:
                continue
            draws: Iterator[Draw]
            if cfg.objective == "howto100m":
                draws = howto100m_batches(
                    videos, rng, cfg.videos_per_batch, cfg.clips_per_video, min_ms, cfg.drop_last
                )
            elif cfg.objective == "milnce":
                draws = milnce_batches(
                    videos,
                    rng,
                    cfg.videos_per_batch,
                    cfg.clips_per_video,
                    cfg.bag_size,
                    min_ms,
                    cfg.drop_last,
                )
            elif cfg.objective == "videoclip":
                draws = videoclip_batches(
                    videos, self._videoclip_groups(videos, rng), rng, cfg.clips_per_video,
                    cfg.video_encoder == "transformer", self.max_text_tokens,
                )  # fmt: skip
            else:
                # clips_per_video clips per video per epoch, as the other objectives draw
                passes = max(1, cfg.clips_per_video // (SORT_WINDOW * cfg.sort_windows))
                draws = tvts_batches(
                    videos, rng, cfg.videos_per_batch, cfg.sort_windows, passes, cfg.drop_last
                )
            for draw in draws:
                yield self._to_batch(draw)

    def epoch_steps(self) -> tuple[int, int]:
        """As Trainer's; with retrieval batches, epochs after the first group the videos by last epoch's
        index: |V| // videos_per_batch batches a window where epoch 1's random ones are ceil(|V| / that).
        Their number does not depend on the index's vectors, so a stand-in index of zeros counts them."""
        first, _ = super().epoch_steps()
        if not self.cfg.retrieval_batches or self.cfg.epochs == 1:
            return first, first
        rng = np.random.default_rng([self.cfg.seed, 2])
        self._index = {v.video_id: np.zeros(1, np.float32) for window in self.windows(2, rng) for v in window}
        try:
            return first, self.count_steps(2)
        finally:
            self._index = {}  # epoch 1 draws random batches; epoch 2 builds the real index

    def _videoclip_groups(self, videos: list[VideoLines], rng: np.random.Generator) -> list[np.ndarray]:
        """Retrieval batches from last epoch's index when there is one for every video, else random."""
        vectors = [self._index.get(v.video_id) for v in videos]
        if self.cfg.retrieval_batches and all(v is not None for v in vectors):
            return retrieval_batches(np.stack(vectors), rng, self.cfg.videos_per_batch)  # type: ignore[arg-type]
        return chunks(rng.permutation(len(videos)), self.cfg.videos_per_batch, self.cfg.drop_last)

    def _to_batch(self, draw: Draw) -> Batch:
        video, text = torch.from_numpy(draw.video), self.encode_texts(draw.texts)
        groups, order = torch.from_numpy(draw.groups), torch.from_numpy(draw.order)
        if draw.tokens is None or draw.real is None:
            return Batch(video, text, groups, order)
        return WindowBatch(
            video, text, groups, order, torch.from_numpy(draw.tokens), torch.from_numpy(draw.real)
        )

    # -- model and loss -----------------------------------------------------------------------------
    def standardisation(self) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        if self._stats is None:
            self._stats = super().standardisation()
        return self._stats

    def build(self) -> tuple[JointEmbedding, dict[str, Any]]:
        _, extra = super().build()  # the run's record (config, data, vocabulary); towers rebuilt below
        cfg = self.cfg
        mean, std, d_video, d_sentence = self.standardisation()
        model = build_model(
            cfg.text,
            d=cfg.d,
            d_video=d_video,
            d_sentence=d_sentence or 384,
            vocab_size=len(self.vocab) if self.vocab else None,
            word_vectors=self.word_vectors,
            text_hidden=cfg.text_hidden or 2048,
            masked_words=cfg.masked_word_max,
            video_kind=cfg.video_encoder,
        )
        if cfg.objective == "tvts":
            model.heads["sorter"] = TranscriptSorter(cfg.d, classes=SORT_WINDOW)
        if cfg.standardise:
            model.video.set_standardisation(mean, std)
        extra.update(
            objective=cfg.objective,
            text_hidden=cfg.text_hidden or 2048,
            masked_words=cfg.masked_word_max,
            video_encoder=cfg.video_encoder,
            heads=sorted(model.heads),
        )
        return model.to(self.device), extra

    def make_loss(self) -> nn.Module:
        cfg = self.cfg
        name = {"pairs": cfg.loss, "howto100m": "max_margin_reference", "videoclip": "infonce"}.get(
            cfg.objective, cfg.objective
        )
        return build_loss(
            name,
            cfg.margin,
            cfg.negative_weighting,
            cfg.temperature,
            cfg.neighbours,
            cfg.sort_weight,
            fused=self.precision == "bf16",
        )

    def train_one_epoch(
        self,
        model: nn.Module,
        loss_fn: nn.Module,
        optimizer: torch.optim.Optimizer,
        batches: Iterator[Batch],
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    ) -> EpochStats:
        if self.cfg.retrieval_batches and self._epoch > 1:
            self._index = self.retrieval_index(getattr(model, "module", model), self._epoch)
        if self.cfg.objective == "tvts":
            from tasks.train.tvts_step import tvts_epoch

            return tvts_epoch(
                model, loss_fn, optimizer, prefetch(batches, self.device), self.device, self.cfg.seed,
                self.cfg.clip_norm, scheduler, self.precision,
            )  # fmt: skip
        return train_epoch(
            model, loss_fn, optimizer, prefetch(batches, self.device), self.device, precision=self.precision,
            clip_norm=self.cfg.clip_norm, scheduler=scheduler,
        )  # fmt: skip

    @torch.no_grad()
    def retrieval_index(self, model: JointEmbedding, epoch: int) -> dict[str, np.ndarray]:
        """VideoCLIP's per-video vectors: the mean of (video + text) / 2 over fresh pairs of the video."""
        model.eval()
        rng = np.random.default_rng([self.cfg.seed, epoch, 23])
        out: dict[str, np.ndarray] = {}
        for videos in self.windows(epoch, rng):
            for video in videos:
                counts = token_counts(video.texts)
                pairs = [
                    videoclip_pair(video.starts, video.ends, counts, video.seconds, rng, self.max_text_tokens)
                    for _ in range(self.cfg.clips_per_video)
                ]
                if self.cfg.video_encoder == "transformer":
                    x = pad_sequences([window_tokens(video, *p.video_s) for p in pairs], MAX_WINDOW_TOKENS)[0]
                else:
                    x = np.stack([video.mean_tokens(*p.video_s) for p in pairs])
                texts = [videoclip_text(video, p.lines, self.max_text_tokens) for p in pairs]
                v = model.video(torch.from_numpy(x).to(self.device))
                t = model.text(self.encode_texts(texts).to(self.device))
                out[video.video_id] = ((v + t) / 2).mean(0).float().cpu().numpy()
        return out

    def eval_inputs(self, pairs: Pairs) -> torch.Tensor:
        """Held-out clips as pooled vectors, or for VideoCLIP's towers what they trained on: per-second
        tokens (the transformer tower), their mean (the lite tower; clip_pairs' vectors, pooled per the
        run's --clip-pool, are another input than its training windows' means)."""
        if self.cfg.objective != "videoclip":
            return super().eval_inputs(pairs)
        tokens = clip_tokens(
            self.root, self.shards, "heldout", self.cfg.heldout_fraction, pairs.video_ids, pairs.spans_ms,
            self.cfg.pooling, mean=self.cfg.video_encoder != "transformer",
        )  # fmt: skip
        return torch.from_numpy(tokens)
