"""A videoclip run with the lite video tower (a gated unit on the mean of a window's per-second tokens) is
given, by every evaluation (training's held-out recall, `howto eval heldout`, the benchmarks' raw-video
route, `howto search-clips`), each clip's mean of its per-second tokens, as it trained; other objectives'
towers keep the stored pooled vectors, bit for bit."""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import tasks.train.search as search_module
from storage.layout import DataRoot
from storage.shards import read_dataset
from tasks.evaluation import run as eval_run
from tasks.evaluation.embedder import CheckpointEmbedder, InputMismatch
from tasks.evaluation.features import BenchmarkFeatures
from tasks.evaluation.run import Setup, eval_heldout, eval_youcook2
from tasks.train.config import TrainConfig
from tasks.train.data import Pairs, load_shard, pair_shards
from tasks.train.objective_run import ObjectiveTrainer
from tasks.train.pooling import MODELS, features_by_video
from tasks.train.run import Trainer, train
from tasks.train.search import search_clips
from tasks.train.second_tokens import second_tokens
from tasks.train.videos import load_store
from tests.tasks.train.synthetic_roots import one_torch_thread, paired_synthetic_root

BASE: dict[str, Any] = {
    "text": "learned", "d": 16, "lr": 3e-3, "epochs": 1, "heldout_fraction": 0.3, "videos_per_batch": 4,
    "clips_per_video": 4, "seed": 0,
}  # fmt: skip
# The lite tower (video_encoder "pooled"), clips pooled by HowTo100M's max over the line's own rows (the
# default --clip-pool): the stored vectors the evaluations gave it before.
LITE = TrainConfig(objective="videoclip", **BASE)
OTHERS = {"pairs": TrainConfig(**BASE), "tvts": TrainConfig(objective="tvts", **BASE)}


def _token_mean(rows: dict[str, np.ndarray], start_ms: int, end_ms: int) -> np.ndarray:
    """By hand: the mean of the tokens of the clip's seconds [floor(start), ceil(end)), each model's part
    L2'd, as VideoCLIP's lite tower's training windows are pooled."""
    tokens = second_tokens(rows)[start_ms // 1000 : -(-end_ms // 1000)].astype(np.float32)
    mean, parts, at = tokens.mean(0), [], 0
    for model in MODELS:
        part = mean[at : at + rows[model].shape[1]]
        parts.append(part / np.linalg.norm(part))
        at += len(part)
    return np.concatenate(parts)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with one_torch_thread():
        root = paired_synthetic_root(tmp_path_factory.mktemp("lite-tower"), n_videos=16, n_steps=8)
        runs = {name: train(cfg, root) for name, cfg in (("lite", LITE), *OTHERS.items())}
        trainer = ObjectiveTrainer(LITE, root)
        heldout = trainer.heldout()
        feats = features_by_video(read_dataset(root, "frame_features").to_table())
        means = np.stack([
            _token_mean(feats[str(vid)].rows, start, end)
            for vid, (start, end) in zip(heldout.video_ids, heldout.spans_ms, strict=True)
        ])  # fmt: skip
        yield {
            "root": root, "runs": runs, "heldout": heldout, "feats": feats, "means": means,
            "trained": trainer.eval_inputs(heldout).numpy(),
        }  # fmt: skip


def test_training_recall_gives_the_lite_tower_each_clips_token_mean(world: dict[str, Any]) -> None:
    """The trainer's held-out recall gave the tower each clip's stored vector (max-pooled over the line),
    where it trained on means of per-second tokens over its windows; now each clip's token mean."""
    pairs: Pairs = world["heldout"]
    trained = world["trained"]
    assert trained.shape == pairs.video.shape and trained.dtype == np.float32
    np.testing.assert_allclose(trained, world["means"], rtol=0, atol=1e-6)
    assert np.abs(trained - pairs.video.astype(np.float32)).max() > 0.05  # another input than before
    # Training's own windows are averaged by the same definition.
    video = load_store(world["root"], pair_shards(world["root"]), "train", LITE.heldout_fraction).videos[0]
    np.testing.assert_allclose(
        video.mean_tokens(2, 9), _token_mean(video.rows, 2000, 9000), rtol=0, atol=1e-6
    )


def test_eval_heldout_scores_the_lite_tower_as_its_training_log_did(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`howto eval heldout` fed it the stored vectors: its figures were of other inputs than the training
    log's. Now it gets the same inputs, bit for bit, gives the log's recall, and its recorded evaluations
    (of the stored vectors) are scored again."""
    given: list[np.ndarray] = []
    fingerprints: list[dict[str, Any]] = []
    real_video, real_record = CheckpointEmbedder.video, eval_run.record

    def video(self: CheckpointEmbedder, x: np.ndarray) -> np.ndarray:
        given.append(np.array(x))
        return real_video(self, x)

    def record(*args: Any, **kwargs: Any) -> Any:
        fingerprints.append(args[5])
        return real_record(*args, **kwargs)

    monkeypatch.setattr(CheckpointEmbedder, "video", video)
    monkeypatch.setattr(eval_run, "record", record)
    manifest = world["runs"]["lite"]
    with one_torch_thread():
        result = eval_heldout(Setup(world["root"], checkpoint=manifest["run_id"]))
    assert not result.cached
    (inputs,) = given
    assert np.array_equal(inputs, world["trained"])
    np.testing.assert_allclose(inputs, world["means"], rtol=0, atol=1e-6)
    for metric in ("R@1", "R@5", "R@10", "MedR"):
        assert result.value(metric) == pytest.approx(manifest["metrics"][metric], abs=1e-6), metric
    assert fingerprints[0]["video_inputs"] == "mean of per-second tokens"


def test_a_benchmark_gives_the_lite_tower_each_clips_token_mean(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """YouCook2 segments that are the held-out clips themselves get the inputs training's recall gave them
    (before: each segment pooled per --clip-pool); the released pooled features are refused in one line."""
    pairs: Pairs = world["heldout"]
    videos = sorted(set(map(str, pairs.video_ids)))
    feats = {v: world["feats"][v] for v in videos}
    monkeypatch.setattr(eval_run, "benchmark_features", lambda *a, **k: BenchmarkFeatures(feats))
    given: list[np.ndarray] = []
    real_video = CheckpointEmbedder.video
    monkeypatch.setattr(
        CheckpointEmbedder, "video", lambda self, x: given.append(np.array(x)) or real_video(self, x)
    )
    database: dict[str, Any] = {
        v: {"subset": "validation", "duration": 32.0, "annotations": []} for v in videos
    }
    for i, (vid, (start, end)) in enumerate(zip(pairs.video_ids, pairs.spans_ms, strict=True)):
        database[str(vid)]["annotations"].append(
            {"segment": [start / 1000, end / 1000], "sentence": f"clip {i}"}
        )
    annotations = tmp_path / "youcookii_annotations_trainval.json"
    annotations.write_text(json.dumps({"database": database}))
    folder = tmp_path / "videos"
    folder.mkdir()
    for vid in videos:
        (folder / f"{vid}.mp4").write_bytes(b"placeholder: features are the root's")
    setup = Setup(world["root"], checkpoint=world["runs"]["lite"]["run_id"])
    with one_torch_thread():
        eval_youcook2(setup, annotations, folder)
    (inputs,) = given
    # Segments are kept grouped by video, in file order within each.
    order = sorted(range(len(pairs)), key=lambda i: videos.index(str(pairs.video_ids[i])))
    assert np.array_equal(inputs, world["trained"][order])
    np.testing.assert_allclose(inputs, world["means"][order], rtol=0, atol=1e-6)

    pkl = tmp_path / "youcook_val.pkl"
    d = feats[videos[0]].rows[MODELS[0]].shape[1]
    pkl.write_bytes(pickle.dumps([{"id": "v", "2d": np.ones(d), "3d": np.ones(d), "caption": "c"}] * 2))
    with pytest.raises(InputMismatch, match="reads the mean of each clip's per-second tokens.*--videos"):
        eval_youcook2(setup, pkl=pkl)


def test_search_clips_gives_the_lite_tower_each_clips_token_mean(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`howto search-clips` ranked the stored vectors; now each clip's token mean, the held-out clips'
    exactly as training's recall gave them."""
    given: list[tuple[str, np.ndarray]] = []
    real = search_module.video_inputs

    def recording(root: DataRoot, shard: int, pairs: Pairs, reads: Any) -> Iterator[tuple[int, torch.Tensor]]:
        for start, x in real(root, shard, pairs, reads):
            given.extend(zip(pairs.clip_ids[start : start + len(x)], x.numpy(), strict=True))
            yield start, x

    monkeypatch.setattr(search_module, "video_inputs", recording)
    with one_torch_thread():
        search_clips(world["root"], "anything", k=3, run_id=world["runs"]["lite"]["run_id"])
    by_clip = dict(given)
    pairs: Pairs = world["heldout"]
    inputs = np.stack([by_clip[c] for c in pairs.clip_ids])
    assert np.array_equal(inputs, world["trained"])
    np.testing.assert_allclose(inputs, world["means"], rtol=0, atol=1e-6)
    every = [load_shard(world["root"], s, "train", 0.0, with_text=False) for s in pair_shards(world["root"])]
    assert len(by_clip) == sum(len(p) for p in every)  # every clip of the root, held-out or not


@pytest.mark.parametrize("name", sorted(OTHERS))
def test_other_objectives_keep_the_stored_vectors(
    world: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pairs and tvts towers trained on the stored pooled vectors: every evaluation still gives them those,
    bit for bit, and their recorded evaluations keep their fingerprints."""
    cfg, root, run_id = OTHERS[name], world["root"], world["runs"][name]["run_id"]
    pairs: Pairs = world["heldout"]
    trainer = ObjectiveTrainer(cfg, root) if name != "pairs" else Trainer(cfg, root)
    assert np.array_equal(trainer.eval_inputs(pairs).numpy(), pairs.video.astype(np.float32))
    assert CheckpointEmbedder.load(root, run_id)[0].video_input == "pooled"
    given: list[np.ndarray] = []
    fingerprints: list[dict[str, Any]] = []
    real_video, real_record = CheckpointEmbedder.video, eval_run.record
    monkeypatch.setattr(
        CheckpointEmbedder, "video", lambda self, x: given.append(np.array(x)) or real_video(self, x)
    )
    monkeypatch.setattr(eval_run, "record", lambda *a, **k: fingerprints.append(a[5]) or real_record(*a, **k))
    with one_torch_thread():
        eval_heldout(Setup(root, checkpoint=run_id))
    assert np.array_equal(given[0], pairs.video.astype(np.float32))
    assert "video_inputs" not in fingerprints[0]
