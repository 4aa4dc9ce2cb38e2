"""Run directories in the data root: per-epoch checkpoints (atomic), the latest one, model rebuild."""

from __future__ import annotations

import re
from typing import Any

import torch

from models.embedding import JointEmbedding, build_model
from models.text import Vocabulary
from models.train_loop import read_checkpoint
from storage.layout import DataRoot

_EPOCH = re.compile(r"epoch-(\d+)\.pt$")


def run_dir(root: DataRoot, run_id: str) -> str:
    return root.path("train", run_id)


def checkpoint_path(root: DataRoot, run_id: str, epoch: int) -> str:
    return f"{run_dir(root, run_id)}/checkpoints/epoch-{epoch}.pt"


def list_epochs(root: DataRoot, run_id: str) -> list[int]:
    """Epochs with a finished checkpoint, ascending."""
    directory = f"{run_dir(root, run_id)}/checkpoints"
    if not root.exists(directory):
        return []
    found = (_EPOCH.search(p) for p in root.fs.ls(directory, detail=False))
    return sorted(int(m.group(1)) for m in found if m)


def latest_checkpoint(root: DataRoot, run_id: str | None = None) -> str | None:
    """The newest checkpoint of a run, or of the most recently written run when none is named."""
    if run_id is not None:
        epochs = list_epochs(root, run_id)
        return checkpoint_path(root, run_id, epochs[-1]) if epochs else None
    base = root.path("train")
    if not root.exists(base):
        return None
    candidates = []
    for directory in root.fs.ls(base, detail=False):
        rid = directory.rstrip("/").rsplit("/", 1)[-1]
        epochs = list_epochs(root, rid)
        if epochs:
            path = checkpoint_path(root, rid, epochs[-1])
            candidates.append((root.fs.modified(path).timestamp(), path))
    return max(candidates)[1] if candidates else None


def load_state(root: DataRoot, path: str) -> dict[str, Any]:
    with root.open(path, "rb") as handle:
        return read_checkpoint(handle, path)


def model_from_state(state: dict[str, Any]) -> tuple[JointEmbedding, Vocabulary | None]:
    """Rebuild the trained model (and the word vocabulary of word-level text sides) from a checkpoint."""
    extra = state["extra"]
    vocab = (
        Vocabulary(extra["vocab"], lowercase=extra.get("vocab_lowercase", False))
        if extra.get("vocab")
        else None
    )
    vectors = None
    if extra["text"] == "word2vec":
        vectors = torch.zeros(len(vocab) if vocab else 1, int(extra["d_word"]))
    model = build_model(
        extra["text"],
        d=int(extra["d"]),
        d_video=int(extra["d_video"]),
        d_sentence=int(extra.get("d_sentence") or 384),
        vocab_size=len(vocab) if vocab else None,
        word_vectors=vectors,
        text_hidden=int(extra.get("text_hidden") or 2048),
        masked_words=bool(extra.get("masked_words", True)),
        video_kind=str(extra.get("video_encoder") or "pooled"),
    )
    # Training-only heads (TVTS sorting) are not needed to embed: their weights are left out.
    weights = {k: v for k, v in state["model"].items() if not k.startswith("heads.")}
    model.load_state_dict(weights)
    model.eval()
    return model, vocab
