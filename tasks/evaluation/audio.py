"""The audio part of `howto eval heldout`: when the root has audio_features and a FAC checkpoint, its
video<->audio and zero-shot audio->text retrieval on the held-out clips of the split it was trained on."""

from __future__ import annotations

import logging
from typing import Any

from storage.layout import DataRoot
from storage.shards import list_markers
from tasks.audio.fac_checkpoint import FACCheckpoint, feature_spaces, load_fac
from tasks.common import config_hash
from tasks.evaluation.results import _checkpoint_identity
from tasks.evaluation.scoring import Scores

log = logging.getLogger(__name__)

# Stored as eval_metrics rows (no tie rule: rank ties count against the model, as evaluate_fac ranks).
AUDIO_METRICS = ("v2a_R@1", "v2a_R@5", "a2v_R@5", "a2t_R@1", "a2t_R@5", "v2a_chance_R@5", "a2t_chance_R@5")


def audio_checkpoint(root: DataRoot) -> FACCheckpoint | None:
    """The FAC checkpoint, only when the root also has audio_features (else the audio part is skipped)."""
    if not list_markers(root, "audio_features"):
        return None
    fac = load_fac(root)
    if fac is not None and fac.feature_spaces is not None and fac.feature_spaces != feature_spaces(root):
        # Its inputs were remade otherwise since (another audio encoder, feature sizes, pooling): scored on
        # them it fails on their widths, or at equal widths gives numbers that mean nothing.
        log.warning(
            "%s: the FAC checkpoint was trained on audio, video or text features made otherwise than the "
            "root's now; its audio scores are left out: train it again (howto audio fac)",
            fac.path,
        )
        return None
    return fac


def audio_fingerprint(root: DataRoot, fac: FACCheckpoint, count_empty: bool = False) -> dict[str, Any]:
    """What the audio scores depend on: the checkpoint file and the audio shards that hold rows. A shard with
    none (a re-crawl that added no video) changes no score, so it is left out, as from clip_pairs' hash;
    `count_empty`: the fingerprint older code recorded evaluations under, when it still counted them."""
    markers = list_markers(root, "audio_features")
    shards = {str(m.shard): m.config_hash for m in markers if count_empty or m.rows_out}
    return {"fac": _checkpoint_identity(root, fac.path), "audio": config_hash(shards)}


def add_audio_scores(root: DataRoot, fac: FACCheckpoint, scores: Scores) -> None:
    """Score FAC on every held-out clip with audio of its own split and add the rows."""
    from tasks.audio.fac_data import load_root, split_heldout
    from tasks.audio.fac_train import evaluate_fac

    data, vids = load_root(root)
    _, heldout = split_heldout(data, vids, fac.heldout_fraction)
    if int(heldout.has_audio.sum()) < 2:
        return
    metrics = evaluate_fac(fac.trained, heldout)
    for name in AUDIO_METRICS:
        n = metrics["a2t_candidates"] if name.startswith("a2t_chance") else metrics["clips"]
        scores.add(name, metrics[name], int(n))


def audio_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Printable lines for the audio rows of an evaluation (none when it has none)."""
    value = {r["metric"]: r for r in rows if r["metric"] in AUDIO_METRICS}
    if not value:
        return []
    clips = int(value["v2a_R@5"]["n"])
    cells = "; ".join(f"{k} {value[k]['value'] * 100:.1f}" for k in AUDIO_METRICS[:5])
    chance = (
        f"chance v2a R@5 {value['v2a_chance_R@5']['value'] * 100:.1f}, "
        f"a2t R@5 {value['a2t_chance_R@5']['value'] * 100:.1f} among {int(value['a2t_chance_R@5']['n'])} captions"
    )
    return [
        f"  audio (FAC checkpoint, {clips} held-out clips with audio; a2t is zero-shot), recall in %: {cells}",
        f"  {chance}",
    ]
