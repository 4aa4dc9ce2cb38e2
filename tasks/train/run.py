"""One training run over the data root: data, model, epochs with checkpoints, metrics and report."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from models import distributed
from models.cpu_allocator import keep_freed_memory
from models.embedding import JointEmbedding, build_model
from models.encoders import pick_device
from models.evaluate import evaluate_pairs
from models.losses import build_loss
from models.schedules import Schedule
from models.text import Vocabulary, load_word2vec, tokenize
from models.train_loop import (
    Batch,
    CheckpointMismatch,
    EpochStats,
    TrainState,
    make_optimizer,
    pick_precision,
    restore,
    save_checkpoint,
    train_epoch,
)
from storage.atomic import atomic_write_bytes
from storage.layout import DataRoot
from storage.shard_lock import training_lock
from storage.shards import read_dataset, write_shard
from tasks.common import code_version
from tasks.evaluation.heldout import sample_heldout
from tasks.interrupts import refuse_after_stop
from tasks.progress import advance
from tasks.train.checkpoints import (
    checkpoint_path,
    latest_checkpoint,
    list_epochs,
    load_state,
    remove_killed_saves,
    run_dir,
    run_or_earlier,
    saving,
)
from tasks.train.config import OBJECTIVE_REVISIONS, TrainConfig, run_id_for, run_shard_number, train_hash
from tasks.train.data import Pairs, group_batches, load_shard, make_batch, pair_shards, prefetch
from tasks.train.pooling import PoolingMismatch
from tasks.train.prepare import (
    RANDOM_WEIGHT_VIDEOS,
    data_hashes,
    data_snapshot,
    earlier_pairs_hash,
    no_pairs_message,
    require_pairs_pooled,
)
from tasks.train.report import read_card, write_report
from tasks.train.split import heldout_mask

log = logging.getLogger(__name__)


class TrainingDataError(ValueError):
    """The data root has nothing to train on, or a text side's input is missing."""


def _text_side(
    cfg: TrainConfig, root: DataRoot, heldout: float
) -> tuple[Vocabulary | None, torch.Tensor | None]:
    """Vocabulary (and word2vec table) for word-level text sides; (None, None) for MiniLM.

    The learned vocabulary comes from the training split's captions alone: a word only held-out captions
    use would get a row no training step ever moves, so its random initial vector joined the max over
    words of exactly the captions the run is judged on (and `min_word_count` counted held-out uses),
    where a word unseen in training is otherwise dropped, as `search-clips` drops one in a new query.
    word2vec keeps the words of every caption: its vectors are GoogleNews', frozen and learned from none
    of our data, and the reference keeps the whole table."""
    if cfg.text == "minilm":
        return None, None
    if cfg.text == "learned":
        return Vocabulary.build(_captions(root, heldout), min_count=cfg.min_word_count), None
    if not cfg.word2vec_path:
        raise TrainingDataError("text='word2vec' needs word2vec_path (a word2vec .bin or .txt file)")
    vocab, vectors = load_word2vec(cfg.word2vec_path, keep={t for s in _captions(root) for t in tokenize(s)})
    return vocab, vectors


def _captions(root: DataRoot, heldout: float | None = None) -> Iterator[str]:
    """Every clip pair's caption, or with `heldout` (the held-out fraction) the training split's, one
    shard's at a time. Read whole as Python strings they grew with the dataset, about 130 bytes a clip
    (+330 MiB peak RSS at 2.2M clips; HowTo100M's 136M would take some 17 GB), only to be counted word by
    word. Shard by shard, not the dataset's batches: its scanner reads ahead of a slow consumer, and held
    every shard's text in Arrow's memory at once."""
    columns = ["text"] if heldout is None else ["video_id", "text"]
    for fragment in read_dataset(root, "clip_pairs").get_fragments():
        table = fragment.to_table(columns=columns)
        if heldout is not None:
            table = table.filter(pa.array(~heldout_mask(table.column("video_id"), heldout)))
        yield from table.column("text").to_pylist()


def _shuffled(pairs: Pairs, seed: int, shard: int) -> Pairs:
    """Control: captions (and their embeddings) permuted across the shard's clips, fixed per shard."""
    perm = np.random.default_rng([seed, shard, 7]).permutation(len(pairs))
    texts = [pairs.texts[i] for i in perm]
    return Pairs(
        pairs.clip_ids,
        pairs.video_ids,
        pairs.idx,
        pairs.spans_ms,
        texts,
        pairs.video,
        None if pairs.text is None else pairs.text[perm],
    )


def data_run_id(cfg: TrainConfig, root: DataRoot, snapshot: dict[str, Any]) -> str:
    """The run this config and data name (`run_id_for`). Empty clip_pairs shards are not in the data hash
    (`pairs_hash`); a default run begun under the hash that counted them is still this data's run, so it
    is resumed (or found trained) rather than begun again."""
    run_id = run_id_for(cfg, snapshot["hash"])
    if not snapshot.get("empty_shards"):
        return run_id
    log.info("%d clip_pairs shard(s) with no pairs (a re-crawl that added no clip) are left out of the data "
             "hash: they change nothing a run trains on", snapshot["empty_shards"])  # fmt: skip
    found = run_or_earlier(root, run_id, run_id_for(cfg, earlier_pairs_hash(snapshot["per_shard"])))
    if found != run_id:
        log.info("%s: this data's run, begun when empty shards still counted in its id", found)
    return found


class Trainer:
    """Holds a run's data access and text encoding; `run()` trains the remaining epochs."""

    def __init__(self, cfg: TrainConfig, root: DataRoot) -> None:
        self.cfg, self.root = cfg, root
        self.shards = pair_shards(root)
        if not self.shards:
            raise TrainingDataError(no_pairs_message(root))
        try:  # the checkpoint records cfg's pooling, and evaluation pools benchmark spans that way
            require_pairs_pooled(root, cfg.pooling, "this run's config")
        except PoolingMismatch as exc:
            raise TrainingDataError(str(exc)) from exc
        self.snapshot = data_snapshot(root)
        if self.snapshot[RANDOM_WEIGHT_VIDEOS]:
            log.warning("training on the features of %d video(s) made with random weights, not pretrained ones: "
                        "the model card says so", self.snapshot[RANDOM_WEIGHT_VIDEOS])  # fmt: skip
        self.run_id = data_run_id(cfg, root, self.snapshot)
        self.with_text = cfg.text == "minilm"
        self.vocab, self.word_vectors = _text_side(cfg, root, cfg.heldout_fraction)
        # Under torchrun every rank runs this same code on its share of the batches (DDP).
        preferred = pick_device(cfg.device)
        self.dist = distributed.from_env(preferred)
        self.device = distributed.device_for(self.dist, preferred)
        self.precision = pick_precision(self.device, cfg.precision)  # "auto" resolved on this machine
        if self.device.type == "cpu":
            keep_freed_memory()  # no page faults on the step's large tensors (models/cpu_allocator.py)
        self._kept: tuple[Pairs, dict[int, tuple[int, int]]] | None = None  # see pair_windows
        self.shards_read = 0  # clip_pairs shards decoded by train_pairs (`howto bench train` reports it)

    def text_of(self, pairs: Pairs, rows: np.ndarray) -> torch.Tensor:
        if self.vocab is None:
            assert pairs.text is not None
            return torch.from_numpy(pairs.text[rows])
        return self.vocab.encode_batch([pairs.texts[i] for i in rows], self.cfg.max_words)

    def train_pairs(self, shard: int) -> Pairs:
        self.shards_read += 1
        pairs = load_shard(self.root, shard, "train", self.cfg.heldout_fraction, self.with_text)
        return _shuffled(pairs, self.cfg.seed, shard) if self.cfg.shuffle_pairs else pairs

    def pair_windows(self, order: list[int]) -> Iterator[tuple[Pairs, np.ndarray]]:
        """The training pairs of `order`'s shards, shards_in_memory shards at a time, as (pairs, rows): the
        window is `pairs`' rows `rows`, its shards in `order`'s order (rows index, they do not copy).

        Where every training shard fits in one window, each is decoded once per run and the same pairs
        serve every epoch: an epoch's shard order only changes which rows come first. Parquet's float16
        decode is most of a shard's read (storage/shards.py), about 7% of a bf16 step on 2 CPU cores, and
        on a GPU, whose steps take milliseconds, reading the shards again each epoch would leave it
        waiting. The batches are the same, row for row, as those of a window read anew (a test). More
        shards than that are read window by window each epoch, their memory given back after each.

        A shard read anew costs its vectors one copy out of Parquet: the file is memory-mapped
        (storage/shards.py `_parse`), each row group's values go straight into the window's array
        (tasks/train/data.py `vectors_to_numpy`), and a window of one shard is that array (`Pairs.concat`).
        Before, the column chunk was read into a buffer, joined, then copied again. Measured with bf16
        epochs of 8 steps at d=4096 over two 8192 x 4096 shards, one a window, alternating eight times
        in one process on 2 Xeon cores: 45 against 75 ms of loading a step, 0.682 against 0.717 s a step."""
        if len(self.shards) > self.cfg.shards_in_memory:
            for start in range(0, len(order), self.cfg.shards_in_memory):
                window = Pairs.concat(
                    [self.train_pairs(s) for s in order[start : start + self.cfg.shards_in_memory]]
                )
                yield window, np.arange(len(window))
            return
        if self._kept is None:
            parts = {s: self.train_pairs(s) for s in sorted(self.shards)}
            starts = np.cumsum([0] + [len(p) for p in parts.values()])
            spans = {s: (int(a), int(b)) for s, a, b in zip(parts, starts[:-1], starts[1:], strict=True)}
            self._kept = (Pairs.concat(list(parts.values())), spans)
        kept, spans = self._kept
        rows = [np.arange(*spans[s]) for s in order]
        yield kept, np.concatenate(rows) if rows else np.zeros(0, np.int64)

    # Hooks that ObjectiveTrainer (tasks/train/objective_run.py) overrides for the seed methods.
    def make_loss(self) -> torch.nn.Module:
        cfg = self.cfg
        return build_loss(
            cfg.loss,
            cfg.margin,
            cfg.negative_weighting,
            cfg.temperature,
            cfg.neighbours,
            fused=self.precision == "bf16",
        )

    def train_one_epoch(
        self,
        model: torch.nn.Module,
        loss_fn: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        batches: Iterator[Batch],
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    ) -> EpochStats:
        """One epoch; `scheduler`, a per-step schedule, is stepped after every optimiser step."""
        return train_epoch(
            model, loss_fn, optimizer, prefetch(batches, self.device), self.device, precision=self.precision,
            clip_norm=self.cfg.clip_norm, scheduler=scheduler,
        )  # fmt: skip

    def epoch_steps(self) -> tuple[int, int]:
        """This rank's optimiser steps in epoch 1 and in each later epoch: the batches drawn, not trained,
        and counted as the training loop counts them (DDP's share of them, batches of one pair skipped).

        A per-step schedule needs the run's length before its first step, and only drawing the batches
        tells it for every sampler (drop_last, videos too short for a window, DDP's dropped last run).
        Drawing them costs about one epoch's data loading, once per run: the counts are kept in the
        checkpoint for a resumed run. The batches are seeded by epoch, so epoch 1 draws them again alike.
        Later epochs draw as many batches as the first here (ObjectiveTrainer: VideoCLIP's differ).
        """
        first = self.count_steps(1)
        return first, first

    def count_steps(self, epoch: int) -> int:
        return sum(1 for b in distributed.shard_batches(self.batches(epoch), self.dist) if len(b) >= 2)

    def schedule(self, state: dict[str, Any] | None) -> tuple[Schedule, list[int] | None]:
        """The run's learning-rate schedule and, for a per-step one, the steps of its first and later
        epochs (from the checkpoint being resumed, else counted)."""
        cfg = self.cfg
        if cfg.schedule == "epoch_decay":
            return Schedule(decay=cfg.lr_decay), None
        kept = (state or {}).get("extra", {}).get("epoch_steps")
        first, later = (int(n) for n in kept) if kept is not None else self.epoch_steps()
        total = first + (cfg.epochs - 1) * later
        if cfg.warmup_steps >= total:
            raise TrainingDataError(
                f"warmup_steps {cfg.warmup_steps}: not shorter than this run's {total} optimiser steps "
                f"({cfg.epochs} epochs of {later} batches); lower it (or train more epochs)"
            )
        return Schedule(cfg.schedule, cfg.lr_decay, cfg.warmup_steps, total), [first, later]

    def eval_inputs(self, pairs: Pairs) -> torch.Tensor:
        return torch.from_numpy(pairs.video.astype(np.float32))

    def batches(self, epoch: int) -> Iterator[Batch]:
        """An epoch's batches: shards in a seeded order, a window of them in memory at a time."""
        rng = np.random.default_rng([self.cfg.seed, epoch])
        order = list(rng.permutation(self.shards))
        for window, rows_of in self.pair_windows([int(s) for s in order]):
            for rows in group_batches(
                window.video_ids[rows_of], rng, self.cfg.videos_per_batch, self.cfg.clips_per_video
            ):
                yield make_batch(window, rows_of[rows], self.text_of)

    def heldout(self) -> Pairs:
        """Held-out clips drawn at random (seeded) across every held-out video, not the first N in
        shard order (which let a few videos dominate the recall)."""
        return sample_heldout(
            self.root,
            self.shards,
            self.cfg.heldout_fraction,
            self.cfg.eval_max_clips,
            self.cfg.seed,
            self.with_text,
        )

    def standardisation(self) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        """Per-dimension mean/std of training video vectors (one streaming pass), dims, sentence dims."""
        total, total_sq, n, d_sentence = None, None, 0, 0
        for shard in self.shards:
            pairs = load_shard(self.root, shard, "train", self.cfg.heldout_fraction, self.with_text)
            if not len(pairs):
                continue
            x = pairs.video.astype(np.float64)
            total = x.sum(0) if total is None else total + x.sum(0)
            total_sq = (x * x).sum(0) if total_sq is None else total_sq + (x * x).sum(0)
            n += len(pairs)
            d_sentence = pairs.text.shape[1] if pairs.text is not None else 0
        if total is None or total_sq is None:
            raise TrainingDataError(
                f"{self.root.url}: clip_pairs has no training clips outside the held-out split"
            )
        mean = total / n
        std = np.sqrt(np.maximum(total_sq / n - mean * mean, 0.0))
        return torch.from_numpy(mean).float(), torch.from_numpy(std).float(), len(mean), d_sentence

    def build(self) -> tuple[JointEmbedding, dict[str, Any]]:
        mean, std, d_video, d_sentence = self.standardisation()
        model = build_model(
            self.cfg.text,
            d=self.cfg.d,
            d_video=d_video,
            d_sentence=d_sentence or 384,
            vocab_size=len(self.vocab) if self.vocab else None,
            word_vectors=self.word_vectors,
        )
        if self.cfg.standardise:
            model.video.set_standardisation(mean, std)
        extra = {
            "run_id": self.run_id,
            "config": self.cfg.model_dump(mode="json"),
            "train_hash": train_hash(self.cfg),
            "text": self.cfg.text,
            "d": self.cfg.d,
            "d_video": d_video,
            "d_sentence": d_sentence,
            "vocab": self.vocab.words if self.vocab else None,
            "vocab_lowercase": self.vocab.lowercase if self.vocab else False,
            "d_word": int(self.word_vectors.shape[1]) if self.word_vectors is not None else None,
            "max_words": self.cfg.max_words,
            "data": {k: v for k, v in self.snapshot.items() if k != "per_shard"},
            "code_version": code_version(),
            "precision": self.precision,
        }
        return model.to(self.device), extra

    def run(self, on_epoch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Train from the last checkpoint (if any) to cfg.epochs; returns a small manifest.

        One process trains a run at a time (storage/shard_lock.py): another that starts it meanwhile waits,
        then finds it trained. torchrun's ranks are one training and share the run by design."""
        if self.dist.enabled:
            return self._run(on_epoch)
        # Ctrl-C or SIGTERM ends the wait: the run is left to the process training it.
        stop = partial(refuse_after_stop, f"training run {self.run_id} left to the process training it")
        with training_lock(self.root, self.run_id, stop):
            return self._run(on_epoch)

    def _run(self, on_epoch: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
        cfg = self.cfg
        card = read_card(self.root, self.run_id)
        self._refuse_other_data(card)
        if card is not None and card.get("epochs", 0) >= cfg.epochs and list_epochs(self.root, self.run_id):
            log.info("%s: already trained for %d epochs; nothing to do", self.run_id, card["epochs"])
            return {
                "run_id": self.run_id,
                "epochs": card["epochs"],
                "metrics": card["metrics"],
                "precision": card.get("precision"),  # cards written before it was recorded have none
                "cached": True,
                "checkpoint": checkpoint_path(
                    self.root, self.run_id, list_epochs(self.root, self.run_id)[-1]
                ),
            }
        torch.manual_seed(cfg.seed)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        model, extra = self.build()
        if self.dist.is_main and remove_killed_saves(self.root, self.run_id):
            log.info("%s: removed the temp files of saves a kill cut short", self.run_id)
        last = latest_checkpoint(self.root, self.run_id)
        state = load_state(self.root, last) if last is not None else None
        schedule, epoch_steps = self.schedule(state)
        if epoch_steps is not None:
            extra["epoch_steps"] = epoch_steps
        # Under DDP the wrapper runs the model, so the Linear layers' bf16 copies would go unused.
        optimizer, scheduler = make_optimizer(
            model, cfg.lr, cfg.lr_decay, self.precision, weight_copies=False if self.dist.enabled else None,
            betas=cfg.adam_betas, weight_decay=cfg.weight_decay, schedule=schedule,
        )  # fmt: skip
        loss_fn = self.make_loss()
        rows: list[dict[str, Any]] = []
        done = 0
        if state is not None and last is not None:
            self._refuse_other_data(state.get("extra"), last)
            try:
                done = restore(state, model, optimizer, scheduler)
            except CheckpointMismatch as exc:
                raise TrainingDataError(self._misfit_message(last, exc)) from exc
            rows = list(state["extra"].get("history", []))
            log.info("%s: resuming after epoch %d", self.run_id, done)
        eval_pairs = self.heldout()
        if len(eval_pairs) < 2:
            raise TrainingDataError(
                f"{self.root.url}: held-out split has {len(eval_pairs)} clips; raise heldout_fraction"
            )
        eval_video = self.eval_inputs(eval_pairs)
        eval_text = self.text_of(eval_pairs, np.arange(len(eval_pairs)))
        ctx = self.dist
        trained = distributed.wrap(model, ctx, self.device)
        if ctx.enabled:
            log.info("%s: rank %d of %d (DDP) on %s", self.run_id, ctx.rank, ctx.world, self.device)
        for epoch in range(done + 1, cfg.epochs + 1):
            lr = scheduler.get_last_lr()[0]
            batches = distributed.shard_batches(self.batches(epoch), ctx)
            stats = self.train_one_epoch(
                trained, loss_fn, optimizer, batches, scheduler if schedule.per_step else None
            )
            if not schedule.per_step:
                scheduler.step()
            # Every rank's loss and pairs, so the logged epoch is the whole job's, not rank 0's share.
            loss_sum, pairs = distributed.sum_across(
                [stats.loss * stats.pairs, stats.pairs], ctx, self.device
            )
            stats.loss, stats.pairs = loss_sum / max(pairs, 1), int(pairs)
            if not ctx.is_main:
                distributed.barrier(ctx)  # rank 0 evaluates and writes the checkpoint
                continue
            metrics = evaluate_pairs(model, eval_video, eval_text, self.device)
            row = {
                "run_id": self.run_id,
                "epoch": epoch,
                "loss": stats.loss,
                "r_at_1": metrics["R@1"],
                "r_at_5": metrics["R@5"],
                "r_at_10": metrics["R@10"],
                "median_rank": metrics["MedR"],
                "candidates": int(metrics["candidates"]),
                "train_pairs": stats.pairs,
                "lr": lr,
                "epoch_s": stats.seconds,
                "load_s": stats.load_seconds,
            }
            rows.append(row)
            log.info(
                "%s epoch %d: loss %.4f R@1 %.3f R@5 %.3f R@10 %.3f MedR %.1f (%d pairs, %.1fs)",
                self.run_id,
                epoch,
                stats.loss,
                metrics["R@1"],
                metrics["R@5"],
                metrics["R@10"],
                metrics["MedR"],
                stats.pairs,
                stats.seconds,
            )
            self._save(TrainState(model, optimizer, scheduler, epoch, {**extra, "history": rows}))
            if on_epoch is not None:
                on_epoch(row)
            if ctx.is_main:
                advance(f"{self.run_id}: epochs", epoch, cfg.epochs)
            distributed.barrier(ctx)
        if not ctx.is_main:
            return {"run_id": self.run_id, "epochs": cfg.epochs, "rank": ctx.rank, "cached": False}
        return self._finish(rows, extra)

    def _refuse_other_data(self, recorded: dict[str, Any] | None, where: str | None = None) -> None:
        """A run named with --run-id is never read back nor resumed on other clip_pairs than it trained on
        (pairs rebuilt since from new captions or features): its scores would stand for data it never saw,
        or its epochs mix both. A default run id carries the data hash, so it never meets this."""
        theirs = ((recorded or {}).get("data") or {}).get("hash")
        if theirs is None or theirs in data_hashes(self.snapshot):
            return
        raise TrainingDataError(
            f"{where or run_dir(self.root, self.run_id)}: run {self.run_id} was trained on other clip_pairs "
            f"(data hash {theirs}, now {self.snapshot['hash']}: its inputs were rebuilt since): give another "
            f"--run-id, or remove {run_dir(self.root, self.run_id)} to train the run again"
        )

    def _misfit_message(self, checkpoint: str, exc: CheckpointMismatch) -> str:
        """Why run X cannot resume from its checkpoint, and the two ways on. Only a run named with
        --run-id meets this: a run id made from the config changes with the objective's revision."""
        revision = OBJECTIVE_REVISIONS.get(self.cfg.objective, 1)
        code = f"objective {self.cfg.objective} is at revision {revision} here; " if revision > 1 else ""
        return (
            f"{checkpoint}: cannot resume run {self.run_id}: {exc}. Earlier code or another config wrote it "
            f"({code}howto eval still scores it): give another --run-id, or remove "
            f"{run_dir(self.root, self.run_id)} to train the run again"
        )

    def _save(self, state: TrainState) -> None:
        buffer = io.BytesIO()
        save_checkpoint(buffer, state)
        with saving(self.root, self.run_id):
            # The epoch's metrics before its checkpoint: a run resumes after its last checkpoint, so a kill
            # between the two redoes the epoch and writes both again. The other way round, a kill after
            # the last epoch's checkpoint left the run without its train_metrics rows for good (the
            # rewrite removes the shard's marker first), since a resumed run with no epoch left to train
            # writes none.
            write_shard(
                self.root,
                "train_metrics",
                run_shard_number(self.run_id),
                pa.Table.from_pylist(state.extra["history"]),
                config_hash=state.extra["train_hash"],
                code_version=code_version(),
                rows_in=len(state.extra["history"]),
                extra={"run_id": self.run_id},
            )
            atomic_write_bytes(
                self.root, checkpoint_path(self.root, self.run_id, state.epoch), buffer.getvalue()
            )

    def _finish(self, rows: list[dict[str, Any]], extra: dict[str, Any]) -> dict[str, Any]:
        final = rows[-1] if rows else {}
        card = {
            "run_id": self.run_id,
            "model": "gated embedding units (HowTo100M), text side " + self.cfg.text,
            "config": extra["config"],
            "code_version": code_version(),
            "data": self.snapshot,
            "device": str(self.device),
            "precision": self.precision,
            "epochs": len(rows),
            "written_at": time.time(),
            "metrics": {
                "R@1": final.get("r_at_1"),
                "R@5": final.get("r_at_5"),
                "R@10": final.get("r_at_10"),
                "MedR": final.get("median_rank"),
                "candidates": final.get("candidates"),
            },
            "history": rows,
        }
        earlier = read_card(self.root, self.run_id) or {}
        if earlier.get("evaluations"):  # benchmark results (howto eval) outlive a resumed run's new card
            card["evaluations"] = earlier["evaluations"]
        paths = write_report(self.root, self.run_id, rows, card)
        return {
            "run_id": self.run_id,
            "epochs": len(rows),
            "metrics": card["metrics"],
            "precision": self.precision,
            "cached": False,
            "checkpoint": checkpoint_path(self.root, self.run_id, len(rows)),
            **paths,
        }


def train(
    cfg: TrainConfig,
    root: DataRoot | str | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train (or resume) the run this config and data describe; a finished run does no work again."""
    from tasks.train.objective_run import ObjectiveTrainer, needs_objective_trainer

    if needs_objective_trainer(cfg):  # seed methods' samplers and reference switches
        return ObjectiveTrainer(cfg, DataRoot.from_any(root)).run(on_epoch)
    return Trainer(cfg, DataRoot.from_any(root)).run(on_epoch)
