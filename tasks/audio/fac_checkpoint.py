"""The FAC checkpoint of a data root: one trained model (weights, input standardiser, graph sizes) and the
held-out fraction it was trained against, so `howto eval heldout` scores it on clips it never saw."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch

from models.fac import MMEmbedding
from models.torch_files import load_torch_file, require_entries
from storage.atomic import atomic_write_bytes
from storage.layout import DataRoot
from storage.shards import list_markers
from tasks.audio.fac_train import FACTrainConfig, Standardiser, TrainedFAC

FAC_CHECKPOINT = "train/fac/fac.pt"
FAC_KIND = "FAC"
FAC_ENTRIES = ("weights", "dims", "graph", "d_fine", "d_coarse", "heldout_fraction", "standardiser")
# The datasets whose vectors FAC reads (directly, or pooled into clip_pairs): their config fingerprints say
# which feature space each input is in (an audio encoder, CNN sizes or weights, pooling, text encoder).
FAC_INPUTS = ("audio_features", "frame_features", "clip_pairs", "text_embeddings")


@dataclass
class FACCheckpoint:
    trained: TrainedFAC
    heldout_fraction: float
    path: str
    feature_spaces: dict[str, list[str]] | None = None  # None: written before they were recorded


def feature_spaces(root: DataRoot) -> dict[str, list[str]]:
    """Each FAC input's config fingerprints (own hashes) over the root's finished shards."""
    return {name: sorted({m.own_hash for m in list_markers(root, name) if m.own_hash}) for name in FAC_INPUTS}


def save_fac(root: DataRoot, trained: TrainedFAC, cfg: FACTrainConfig, heldout_fraction: float) -> str:
    """Write the checkpoint atomically (a reader sees the old one or the whole new one); returns its path."""
    model = trained.model
    state = {
        "weights": model.state_dict(),
        "dims": [model.vis_embd.in_features, model.audio_embd.in_features, model.txt_embd.in_features],
        "graph": cfg.graph,
        "d_fine": cfg.d_fine,
        "d_coarse": cfg.d_coarse,
        "seed": cfg.seed,
        "heldout_fraction": float(heldout_fraction),
        "feature_spaces": feature_spaces(root),
        "standardiser": {
            part: {k: torch.from_numpy(np.asarray(v[k], np.float32)) for k in v}
            for part, v in (("mean", trained.standardiser.mean), ("std", trained.standardiser.std))
        },
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path = root.path(*FAC_CHECKPOINT.split("/"))
    atomic_write_bytes(root, path, buffer.getvalue())
    return path


def load_fac(root: DataRoot) -> FACCheckpoint | None:
    """The root's FAC checkpoint, or None when none was trained (`howto audio fac`, `train compare`)."""
    path = root.path(*FAC_CHECKPOINT.split("/"))
    if not root.exists(path):
        return None
    with root.open(path, "rb") as handle:
        raw = load_torch_file(handle.read(), FAC_KIND, name=path)
    state = require_entries(raw, FAC_ENTRIES, path, FAC_KIND)
    video_dim, audio_dim, text_dim = (int(d) for d in state["dims"])
    model = MMEmbedding(video_dim, audio_dim, text_dim, state["d_fine"], state["d_coarse"], state["graph"])
    model.load_state_dict(state["weights"])
    model.eval()
    std = {part: {k: v.numpy() for k, v in d.items()} for part, d in state["standardiser"].items()}
    return FACCheckpoint(
        TrainedFAC(model, Standardiser(std["mean"], std["std"]), []),
        state["heldout_fraction"],
        path,
        state.get("feature_spaces"),
    )
