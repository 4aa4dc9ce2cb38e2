"""Run directories in the data root: per-epoch checkpoints (atomic), the latest one, model rebuild."""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import torch

from models.embedding import JointEmbedding, build_model
from models.text import Vocabulary
from models.torch_files import NotACheckpoint
from models.train_loop import CHECKPOINT_KIND, read_checkpoint
from storage.atomic import folder_lock, remove_temp_files
from storage.layout import DataRoot
from storage.shards import remove_shard_temp_files
from tasks.train.config import run_shard_number
from tasks.train.prepare import data_hashes, data_snapshot

# A finished checkpoint's whole name: a save cut short by a kill leaves `.tmp-<id>-epoch-N.pt` beside it,
# which is no checkpoint (it was never renamed; it may be cut short) and must never be listed as epoch N.
_EPOCH = re.compile(r"epoch-(\d+)\.pt")
# A run id or comparison name is one folder under train/: letters, digits and ._- only, no leading dot
# (no "..", no hidden folder), so that no name can reach outside the data root or hide from a listing.
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")


class BadRunName(ValueError):
    """A run id or comparison name that is not one safe folder name: the message names the option."""


class BadRunFile(ValueError):
    """A file of a run (its model card) that cannot be read: the message names the file."""


def check_name(name: str, option: str = "--run-id") -> str:
    """`name` when it is a safe single folder name, else BadRunName naming `option`."""
    if not _NAME.fullmatch(name):
        raise BadRunName(
            f"{option} {name!r}: use 1-128 letters, digits, '.', '_' or '-', not starting with a dot "
            "(it names one folder in the data root)"
        )
    return name


def run_dir(root: DataRoot, run_id: str) -> str:
    return root.path("train", check_name(run_id))


def run_or_earlier(root: DataRoot, run_id: str, earlier: str) -> str:
    """`run_id`, or `earlier` (the same run's id under the data hash that counted empty clip_pairs shards,
    tasks/train/prepare.earlier_pairs_hash) where only that run was begun: it is resumed or read back,
    not trained again under the new id."""
    if earlier != run_id and not root.exists(run_dir(root, run_id)) and root.exists(run_dir(root, earlier)):
        return earlier
    return run_id


def checkpoint_path(root: DataRoot, run_id: str, epoch: int) -> str:
    return f"{run_dir(root, run_id)}/checkpoints/epoch-{epoch}.pt"


def list_epochs(root: DataRoot, run_id: str) -> list[int]:
    """Epochs with a finished checkpoint, ascending."""
    directory = f"{run_dir(root, run_id)}/checkpoints"
    if not root.exists(directory):
        return []
    found = (_EPOCH.fullmatch(p.rstrip("/").rsplit("/", 1)[-1]) for p in root.fs.ls(directory, detail=False))
    return sorted(int(m.group(1)) for m in found if m)


@contextmanager
def saving(root: DataRoot, run_id: str) -> Iterator[str]:
    """Hold the run's checkpoints folder (on a local root) while saving or cleaning up: under the hold, a
    temp file of the run's saves (a checkpoint, its train_metrics shard) belongs to a save that was killed,
    never to one in progress (a second trainer of the run). Yields the folder."""
    directory = f"{run_dir(root, run_id)}/checkpoints"
    root.makedirs(directory)
    with folder_lock(directory) if root.is_local else nullcontext():
        yield directory


def remove_killed_saves(root: DataRoot, run_id: str) -> int:
    """Delete the temp files that saves of this run killed before their rename left: checkpoints (each as
    big as a checkpoint, hundreds of MB for the reference model) and the run's `train_metrics` shard and
    marker. Returns how many."""
    if not root.exists(f"{run_dir(root, run_id)}/checkpoints"):  # a new run: nothing to create or clean
        return 0
    with saving(root, run_id) as directory:
        metrics = remove_shard_temp_files(root, "train_metrics", run_shard_number(run_id))
        return remove_temp_files(root, directory) + len(metrics)


def latest_checkpoint(root: DataRoot, run_id: str | None = None) -> str | None:
    """The newest checkpoint of a run; with no run named, of the most recently written run that is not a
    control (captions shuffled across clips: a chance-level model, never what search or eval should pick
    unasked; name it to use it), trained on the clip_pairs the root holds now if any run was: a setting
    changed and then restored trains a run, then reads the first one back, which is the root's model again
    though the other was written later."""
    if run_id is not None:
        epochs = list_epochs(root, run_id)
        return checkpoint_path(root, run_id, epochs[-1]) if epochs else None
    candidates = [(t, path, data) for t, path, control, data in _last_checkpoints(root) if not control]
    if not candidates:
        return None
    now = data_hashes(data_snapshot(root))  # a run trained when empty shards still counted is current too
    current = [c for c in candidates if c[2] in now]
    return max(current or candidates, key=lambda c: (c[0], c[1]))[1]


def control_runs(root: DataRoot) -> list[str]:
    """Ids of the runs with a checkpoint that are controls (shuffle_pairs), oldest first."""
    runs = sorted((t, path) for t, path, control, _ in _last_checkpoints(root) if control)
    return [path.split("/")[-3] for _, path in runs]


def _last_checkpoints(root: DataRoot) -> list[tuple[float, str, bool, str | None]]:
    """(written at, path, is a control run, clip_pairs data hash) of every run's last checkpoint."""
    base = root.path("train")
    if not root.exists(base):
        return []
    found = []
    for directory in root.fs.ls(base, detail=False):
        rid = directory.rstrip("/").rsplit("/", 1)[-1]
        if not _NAME.fullmatch(rid):  # a hidden or foreign folder is no run
            continue
        epochs = list_epochs(root, rid)
        if epochs:
            path = checkpoint_path(root, rid, epochs[-1])
            found.append((root.fs.modified(path).timestamp(), path, *_run_facts(root, rid, path)))
    return found


def _run_record(root: DataRoot, run_id: str, checkpoint: str) -> tuple[dict[str, Any], Any]:
    """A run's training config and data snapshot: from its card, or (a run still training, without a card
    yet) its checkpoint's."""
    card = f"{run_dir(root, run_id)}/model_card.json"
    if root.exists(card):
        facts = read_model_card(root, card)
        return _card_config(facts, card), facts.get("data")
    extra = load_state(root, checkpoint)["extra"]
    return extra.get("config") or {}, extra.get("data")


def _run_facts(root: DataRoot, run_id: str, checkpoint: str) -> tuple[bool, str | None]:
    """Whether the run trained on shuffled pairs, and the hash of the clip_pairs it trained on."""
    config, data = _run_record(root, run_id, checkpoint)
    return bool(config.get("shuffle_pairs")), data.get("hash") if isinstance(data, dict) else None


def default_run_heldout(root: DataRoot) -> tuple[str, float] | None:
    """The id and held-out fraction of the run `howto eval` and `search-clips` take unasked
    (latest_checkpoint); None when the root has none."""
    checkpoint = latest_checkpoint(root)
    if checkpoint is None:
        return None
    run_id = checkpoint.split("/")[-3]  # <run dir>/checkpoints/epoch-N.pt
    fraction = _run_record(root, run_id, checkpoint)[0].get("heldout_fraction")
    return (run_id, float(fraction)) if isinstance(fraction, int | float) else None


def trained_features_config(root: DataRoot, checkpoint: str) -> dict[str, Any] | None:
    """The features config the checkpoint's run trained on (tasks/train/prepare.data_snapshot): from its
    run's card, or (a run still training) the checkpoint's own record; None where neither says (a run from
    before it was recorded, a checkpoint file outside a run folder)."""
    folder = posixpath.dirname(
        checkpoint
    )  # a run's checkpoints are in <run dir>/checkpoints/ (checkpoint_path)
    card = posixpath.join(posixpath.dirname(folder), "model_card.json")
    if posixpath.basename(folder) == "checkpoints" and root.exists(card):
        data = read_model_card(root, card).get("data")
    else:
        data = load_state(root, checkpoint).get("extra", {}).get("data")
    features = data.get("features") if isinstance(data, dict) else None
    return dict(features) if isinstance(features, dict) and features else None


def read_model_card(root: DataRoot, card: str) -> dict[str, Any]:
    """A run's model card (`card` is its path); BadRunFile naming it when it is not one."""
    try:
        with root.open(card, "rb") as handle:
            data = json.loads(handle.read())
    except IsADirectoryError:
        raise BadRunFile(f"{card}: is a directory, not a model card; remove it or the run") from None
    except OSError as exc:
        raise BadRunFile(f"{card}: cannot read: {exc.strerror or exc}") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise BadRunFile(f"{card}: not a model card (not JSON: {exc}); remove it or the run") from exc
    if not isinstance(data, dict):
        raise BadRunFile(f"{card}: not a model card (a JSON {type(data).__name__}, not an object)")
    return data


def _card_config(facts: dict[str, Any], card: str) -> dict[str, Any]:
    """The training config a model card (`facts`, read from `card`) records; BadRunFile naming the card when
    it is not one."""
    config = facts.get("config")
    if config is not None and not isinstance(config, dict):
        raise BadRunFile(f"{card}: not a model card ('config' is not an object); remove it or the run")
    return config or {}


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
    """A checkpoint's contents; NotACheckpoint naming `path` when it is not one (a folder included)."""
    if root.fs.isdir(path):
        raise NotACheckpoint(path, CHECKPOINT_KIND, "a directory, not a file")
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
