"""What evaluation scores with: a checkpoint's two towers behind one small interface (numpy in and out)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from models.embedding import JointEmbedding
from models.text import Vocabulary
from models.torch_files import NotACheckpoint
from models.train_loop import read_checkpoint
from storage.layout import DataRoot
from tasks.audio.fac_checkpoint import FAC_CHECKPOINT
from tasks.train.checkpoints import (
    BadRunFile,
    latest_checkpoint,
    load_state,
    model_from_state,
    no_checkpoint_message,
    trained_features_config,
)
from tasks.train.clip_tokens import TOKEN_BATCH, VideoInput, video_input
from tasks.train.pooling import REFERENCE_POOLING, ClipPooling, pooling_of


class Embedder(Protocol):
    """Maps video inputs and sentences to L2-normalised joint-space rows.

    Its video tower reads what it trained on (`video_input`): "tokens", each span's per-second tokens (n,
    T, d_video) zero-padded (`tasks.train.second_tokens`); "token mean", one mean of them per span (n,
    d_video); "pooled", one vector per span (n, d_video), pooled as `pooling` says its training clips
    were. Benchmark spans are given to it the same way.
    """

    pooling: ClipPooling
    video_input: VideoInput

    def video(self, x: np.ndarray) -> np.ndarray: ...

    def text(self, sentences: list[str]) -> np.ndarray: ...


class NoCheckpoint(FileNotFoundError):
    """No checkpoint at the given path, for the given run, or in the data root at all."""


class InputMismatch(ValueError):
    """The benchmark's video vectors do not have the size the checkpoint was trained on."""


@dataclass(frozen=True)
class CheckpointRef:
    """Which checkpoint was evaluated: its path and its run."""

    path: str
    run_id: str


def resolve_checkpoint(root: DataRoot, ref: str | None) -> str:
    """A checkpoint file path from: nothing (the newest run's latest; never a control run's), a .pt path,
    or a run id."""
    if ref and (ref.endswith((".pt", ".pth")) or "/" in ref or Path(ref).is_file()):
        if not (root.exists(ref) or Path(ref).is_file()):
            raise NoCheckpoint(f"{ref}: no such checkpoint file")
        return ref
    path = latest_checkpoint(root, ref)
    if path is None:
        raise NoCheckpoint(no_checkpoint_message(root, ref, "--checkpoint"))
    return path


def trained_features(root: DataRoot, ref: str | None) -> dict[str, Any] | None:
    """The features config the run of checkpoint `ref` (resolved as `load` does) trained on, when it says;
    a missing or broken checkpoint is left to `load` to report."""
    try:
        return trained_features_config(root, resolve_checkpoint(root, ref))
    except (NoCheckpoint, NotACheckpoint, BadRunFile):
        return None


class CheckpointEmbedder:
    """A trained JointEmbedding; text through its own vocabulary or the frozen MiniLM encoder."""

    def __init__(
        self,
        model: JointEmbedding,
        vocab: Vocabulary | None,
        max_words: int,
        encode: Callable[[list[str]], np.ndarray] | None = None,
        batch: int = 4096,
        pooling: ClipPooling = REFERENCE_POOLING,
        objective: str | None = None,
    ) -> None:
        self.model, self.vocab, self.max_words, self.batch = model.eval(), vocab, max_words, batch
        self._encode = encode
        self.pooling = pooling
        self.video_input = video_input(model, objective)

    @classmethod
    def load(
        cls,
        root: DataRoot,
        ref: str | None = None,
        max_words: int | None = None,
        encode: Callable[[list[str]], np.ndarray] | None = None,
    ) -> tuple[CheckpointEmbedder, CheckpointRef, dict[str, Any]]:
        """The embedder of a checkpoint (see resolve_checkpoint), which checkpoint, and its `extra`."""
        path = resolve_checkpoint(root, ref)
        try:
            if root.exists(path):
                state = load_state(root, path)
            else:  # a checkpoint outside the data root
                with open(path, "rb") as handle:
                    state = read_checkpoint(handle, path)
        except NotACheckpoint as exc:
            if not path.endswith(FAC_CHECKPOINT) or "'weights'" not in exc.reason:
                raise
            reason = "it is the FAC model of `howto audio fac`: `howto eval heldout` scores it by itself"
            raise NotACheckpoint(exc.name, exc.kind, reason) from exc
        model, vocab = model_from_state(state)
        extra = state["extra"]
        words = max_words or int(extra.get("max_words", 20))
        embedder = cls(model, vocab, words, encode, pooling=pooling_of(extra.get("config") or {}),
                       objective=extra.get("objective"))  # fmt: skip
        return embedder, CheckpointRef(path, str(extra.get("run_id", "?"))), extra

    @torch.no_grad()
    def video(self, x: np.ndarray) -> np.ndarray:
        """Pooled vectors or token means (n, d_video), or for a tower of per-second tokens (n, T, d_video)
        tokens (float16 as `padded_tokens` holds them, or float32): see `video_input`."""
        expected = int(self.model.video.mean.shape[0])
        per_second = self.video_input == "tokens"
        if per_second and x.ndim != 3:  # a pooled vector read as one token: an input it never saw
            raise InputMismatch(
                "the checkpoint's video tower reads each clip's per-second tokens; this benchmark gives one "
                "pooled vector per clip"
            )
        if x.ndim != (3 if per_second else 2) or x.shape[-1] != expected:
            raise InputMismatch(
                f"the checkpoint takes {expected}-d video vectors (2D + 3D features); this benchmark gives "
                f"{x.shape[-1]}-d ones"
            )
        # Tokens (float16, exact as float32) go in TOKEN_BATCH clips at a time: the tower's float32 input
        # and its temporaries for 4096 clips of 32 tokens took gigabytes each.
        batch = min(self.batch, TOKEN_BATCH) if per_second else self.batch
        parts = [
            self.model.video(torch.from_numpy(np.ascontiguousarray(x[i : i + batch], np.float32))).numpy()
            for i in range(0, len(x), batch)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)

    @torch.no_grad()
    def text(self, sentences: list[str]) -> np.ndarray:
        if self.vocab is not None:
            ids = self.vocab.encode_batch(sentences, self.max_words)
            return self.model.text(ids).numpy()
        if self._encode is None:
            from tasks.train.stage import minilm_encode

            self._encode = minilm_encode
        return self.model.text(torch.from_numpy(self._encode(sentences))).numpy()
