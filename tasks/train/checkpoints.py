"""Run directories in the data root: per-epoch checkpoints (atomic), the latest one, model rebuild."""

from __future__ import annotations

import json
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
    """The newest checkpoint of a run; with no run named, of the most recently written run that is not a
    control (captions shuffled across clips: a chance-level model, never what search or eval should pick
    unasked; name it to use it)."""
    if run_id is not None:
        epochs = list_epochs(root, run_id)
        return checkpoint_path(root, run_id, epochs[-1]) if epochs else None
    candidates = [(t, path) for t, path, control in _last_checkpoints(root) if not control]
    return max(candidates)[1] if candidates else None


def control_runs(root: DataRoot) -> list[str]:
    """Ids of the runs with a checkpoint that are controls (shuffle_pairs), oldest first."""
    return [path.split("/")[-3] for _, path, control in sorted(_last_checkpoints(root)) if control]


def _last_checkpoints(root: DataRoot) -> list[tuple[float, str, bool]]:
    """(written at, path, is a control run) of every run's last checkpoint."""
    base = root.path("train")
    if not root.exists(base):
        return []
    found = []
    for directory in root.fs.ls(base, detail=False):
        rid = directory.rstrip("/").rsplit("/", 1)[-1]
        epochs = list_epochs(root, rid)
        if epochs:
            path = checkpoint_path(root, rid, epochs[-1])
            found.append((root.fs.modified(path).timestamp(), path, _is_control(root, rid, path)))
    return found


def _is_control(root: DataRoot, run_id: str, checkpoint: str) -> bool:
    """Whether the run trained on shuffled pairs: its card's config says so, or (a run still training,
    without a card yet) its checkpoint's."""
    card = f"{run_dir(root, run_id)}/model_card.json"
    if root.exists(card):
        with root.open(card, "rb") as handle:
            config = json.loads(handle.read()).get("config") or {}
    else:
        config = load_state(root, checkpoint)["extra"].get("config") or {}
    return bool(config.get("shuffle_pairs"))


def no_checkpoint_message(root: DataRoot, run_id: str | None, name_it: str) -> str:
    """Why no checkpoint was found, and what to do; `name_it` is the option that names a run."""
    if run_id is not None:
        return f"{root.path('train')}: no checkpoint for run {run_id}; train first (howto train)"
    controls = control_runs(root)
    if controls:
        return (
            f"{root.path('train')}: only control runs (captions shuffled) have checkpoints, and a control is "
            f"never the default: train a real run (howto train) or name one with {name_it} {controls[-1]}"
        )
    return f"{root.path('train')}: no checkpoint for any run; train first (howto train)"


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
