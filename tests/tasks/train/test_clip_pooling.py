"""Clip pooling as a training setting: mean over a span widened by context, the reference's hash kept,
clip_pairs rebuilt when it changes, and evaluation pooling as the checkpoint's run did."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from flows.cli import app
from storage.shards import list_markers, read_shard
from tasks.common import config_hash
from tasks.evaluation.embedder import CheckpointEmbedder, pooling_of
from tasks.evaluation.run import Setup, eval_heldout
from tasks.synthetic.training import write_synthetic_root
from tasks.train.config import TrainConfig, train_hash
from tasks.train.pooling import MODEL_FPS, MODELS, REFERENCE_POOLING, ClipPooling, PoolingMismatch, pool_clips
from tasks.train.prepare import build_pairs_shard, pairs_config, ready_shards
from tasks.train.run import TrainingDataError, train
from tasks.train.search import search_clips


def _rows() -> dict[str, np.ndarray]:
    rows2d = np.array([[1, 0], [0, 3], [2, 1], [0, 0], [4, 4]], dtype=np.float32)
    rows3d = np.array([[0, 1], [5, 0], [0, 0], [1, 1], [1, 1], [1, 1], [2, 0]], dtype=np.float32)
    return {"resnet152": rows2d, "resnext101": rows3d}


def _l2(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x)


def test_mean_pool_over_the_widened_span() -> None:
    # The span 2000-2500 ms widened by 1 s: 1000-3500 ms. 2D rows int(1.0)=1 .. int(3.5)+1=4 -> rows 1-3;
    # 3D rows int(1.5)=1 .. int(5.25)+1=6 -> rows 1-5.
    out = pool_clips(_rows(), np.array([[2000, 2500]]), pooling=ClipPooling("mean", 1.0))
    expected = np.r_[_l2(np.array([2, 4]) / 3), _l2(np.array([8, 3]) / 5)]
    assert np.allclose(out[0], expected, atol=1e-6)


def test_context_stops_at_the_start_and_zero_context_is_the_span_itself() -> None:
    rows = _rows()
    near_start = pool_clips(rows, np.array([[0, 500]]), pooling=ClipPooling("max", 3.0))
    clamped = pool_clips(rows, np.array([[0, 3500]]), pooling=REFERENCE_POOLING)
    assert np.allclose(near_start, clamped)
    plain = pool_clips(rows, np.array([[1000, 2000]]))
    assert np.allclose(pool_clips(rows, np.array([[1000, 2000]]), pooling=ClipPooling("max", 0.0)), plain)
    assert not np.allclose(
        pool_clips(rows, np.array([[1000, 2000]]), pooling=ClipPooling("mean", 0.0)), plain
    )


def test_bad_pooling_is_refused() -> None:
    with pytest.raises(ValueError, match="max or mean"):
        ClipPooling("avg")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="0-60"):
        ClipPooling("mean", -1.0)
    with pytest.raises(ValueError, match="clip_pool"):
        TrainConfig(clip_pool="avg")  # type: ignore[arg-type]


def test_reference_pooling_keeps_the_hash_of_existing_shards_and_runs() -> None:
    # clip_pairs markers written before the setting existed carried exactly this config.
    before = {"pool": "max", "fps": MODEL_FPS, "models": list(MODELS), "l2": "per-model", "dtype": "float16"}
    assert config_hash(pairs_config(REFERENCE_POOLING)) == config_hash(before)
    assert config_hash(pairs_config(ClipPooling("mean", 2.0))) != config_hash(before)
    # A run's id does not move for configs that leave the new fields at their defaults.
    assert train_hash(TrainConfig()) == train_hash(TrainConfig(clip_pool="max", clip_context_s=0.0))
    assert train_hash(TrainConfig()) != train_hash(TrainConfig(clip_context_s=2.0))


def test_changed_pooling_rebuilds_clip_pairs_and_eval_pools_as_the_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    root = write_synthetic_root(tmp_path / "root", n_videos=12, n_steps=6, dim=32, shards=1)
    shard = ready_shards(root)[0]
    build_pairs_shard(root, shard)
    reference = read_shard(root, "clip_pairs", shard)
    widened = ClipPooling("mean", 2.0)
    assert build_pairs_shard(root, shard, widened)["cached"] is False
    marker = next(m for m in list_markers(root, "clip_pairs") if m.shard == shard)
    assert marker.own_hash == config_hash(pairs_config(widened))
    again = read_shard(root, "clip_pairs", shard)
    assert reference is not None and again is not None
    assert again.column("clip_id").to_pylist() == reference.column("clip_id").to_pylist()
    assert not np.allclose(
        np.array(again.column("vector").to_pylist()), np.array(reference.column("vector").to_pylist())
    )
    assert build_pairs_shard(root, shard, widened)["cached"] is True

    cfg = TrainConfig(
        d=16, epochs=1, videos_per_batch=4, text="learned", clip_pool="mean", clip_context_s=2.0
    )
    summary = train(cfg, root)
    embedder, _, extra = CheckpointEmbedder.load(root, summary["run_id"])
    assert embedder.pooling == widened == pooling_of(extra["config"])
    assert pooling_of({}) == REFERENCE_POOLING  # checkpoints from before the setting

    # The shards now hold mean/2 s vectors: a run asking for the reference's pooling is refused.
    with pytest.raises(TrainingDataError, match=r"clip_pairs shards \[0\] were pooled otherwise"):
        train(cfg.model_copy(update={"clip_pool": "max", "clip_context_s": 0.0}), root)

    # Rebuilt the reference's way, the shards no longer match the mean/2 s checkpoint: scoring or searching
    # with it is refused (one line, exit 2, on the command line) instead of ranking mismatched vectors.
    build_pairs_shard(root, shard)
    with pytest.raises(PoolingMismatch, match="--clip-pool mean --clip-context-s 2"):
        eval_heldout(Setup(root, checkpoint=summary["run_id"]))
    with pytest.raises(PoolingMismatch):
        search_clips(root, "step", run_id=summary["run_id"])
    out = CliRunner().invoke(
        app, ["search-clips", "step", "--data-root", root.url, "--run-id", summary["run_id"]]
    )
    assert out.exit_code == 2, out.output
    assert "were pooled otherwise than checkpoint" in out.output and "Traceback" not in out.output
