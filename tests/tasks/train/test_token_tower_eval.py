"""A run whose video tower reads per-second tokens (videoclip, video_encoder="transformer") is judged on
the same inputs by the trainer's held-out recall and by `howto eval heldout`, and those inputs are read
for the sampled clips' videos only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

import tasks.train.clip_tokens as clip_tokens_module
import tasks.train.videos as videos_module
from models.video_tokens import TokenVideoEncoder
from storage.layout import DataRoot
from tasks.evaluation import run as eval_run
from tasks.evaluation.run import Setup, eval_heldout
from tasks.train.batches import pad_sequences, window_tokens
from tasks.train.config import TrainConfig
from tasks.train.objective_run import ObjectiveTrainer
from tasks.train.run import train
from tasks.train.videos import load_store
from tests.tasks.train.synthetic_roots import one_torch_thread, paired_synthetic_root

CFG = TrainConfig(
    objective="videoclip", video_encoder="transformer", text="learned", d=16, lr=3e-3, epochs=2,
    heldout_fraction=0.3, videos_per_batch=4, clips_per_video=4, seed=0,
)  # fmt: skip


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataRoot]:
    with one_torch_thread():
        yield paired_synthetic_root(tmp_path_factory.mktemp("token-tower"), n_videos=24, n_steps=12)


def test_eval_heldout_scores_a_token_tower_as_its_training_log_did(
    root: DataRoot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`howto eval heldout` fed the run's tower each clip's pooled vector read as one token, where training
    measured its recall on the clips' per-second tokens: the two disagreed on the same clips and weights
    (the demo's run: training R@5 2.8%, eval 4.5%)."""
    with one_torch_thread():
        manifest = train(CFG, root)
        result = eval_heldout(Setup(root, checkpoint=manifest["run_id"]))
    logged = manifest["metrics"]
    assert not result.cached and logged["candidates"] >= 20
    for metric in ("R@1", "R@5", "R@10", "MedR"):
        assert result.value(metric) == pytest.approx(logged[metric], abs=1e-6), metric
    # An evaluation recorded from one-token inputs is not read back as this one.
    fingerprints: list[dict[str, Any]] = []
    monkeypatch.setattr(eval_run, "record", lambda *a, **_k: fingerprints.append(a[5]))
    eval_heldout(Setup(root, checkpoint=manifest["run_id"]))
    assert fingerprints[0]["video_inputs"] == "per-second tokens"


def test_heldout_tokens_are_read_for_the_sampled_clips_videos_only(
    root: DataRoot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every held-out video's frame rows were loaded at once to cut a few thousand clips' tokens: at
    HowTo100M's scale some 120k videos. Now a shard's videos are read one shard at a time, and only those
    of the sampled clips; the tokens are the same."""
    cfg = CFG.model_copy(update={"eval_max_clips": 3})
    trainer = ObjectiveTrainer(cfg, root)
    pairs = trainer.heldout()
    sampled = set(pairs.video_ids.tolist())
    every_heldout = load_store(root, trainer.shards, "heldout", cfg.heldout_fraction).videos
    assert len(pairs) == 3 and len(every_heldout) > len(sampled)
    by_id = {v.video_id: v for v in every_heldout}
    seqs = [
        window_tokens(by_id[str(vid)], int(s // 1000), int(-(-e // 1000)))
        for vid, (s, e) in zip(pairs.video_ids, pairs.spans_ms, strict=True)
    ]
    expected = pad_sequences(seqs, max(len(s) for s in seqs))[0]

    loaded: list[list[str]] = []
    real = videos_module.load_videos

    def recording(*args: Any, **kwargs: Any) -> list[videos_module.VideoLines]:
        out = real(*args, **kwargs)
        loaded.append([v.video_id for v in out])
        return out

    monkeypatch.setattr(videos_module, "load_videos", recording)
    monkeypatch.setattr(clip_tokens_module, "load_videos", recording)
    tokens = trainer.eval_inputs(pairs).numpy()
    assert np.array_equal(tokens, expected)
    # Held as float16, the values they are stored in (half float32's memory): the tower reads the same.
    assert tokens.dtype == np.float16
    tower = TokenVideoEncoder(tokens.shape[-1], 8).eval()
    with torch.no_grad():
        assert torch.equal(tower(torch.from_numpy(tokens)), tower(torch.from_numpy(expected)))
    assert loaded and {v for call in loaded for v in call} <= sampled
