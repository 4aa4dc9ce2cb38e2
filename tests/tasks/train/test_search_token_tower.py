"""`howto search-clips` ranks clips by what the run's video tower gives for what it trained on: a tower of
per-second tokens (videoclip, video_encoder="transformer") each clip's tokens, cut as training cuts them,
a bounded batch of clips at a time; a pooled tower the stored pooled vectors, bit for bit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import tasks.train.search as search_module
from flows.cli import app
from storage.layout import DataRoot
from storage.shards import delete_shard
from tasks.evaluation.embedder import CheckpointEmbedder
from tasks.train.batches import window_tokens
from tasks.train.config import TrainConfig
from tasks.train.data import Pairs, load_shard, pair_shards
from tasks.train.run import train
from tasks.train.search import search_clips
from tasks.train.second_tokens import clip_seconds
from tasks.train.videos import VideoLines, load_store
from tests.tasks.train.synthetic_roots import one_torch_thread, paired_synthetic_root

TOKENS = TrainConfig(
    objective="videoclip", video_encoder="transformer", text="learned", d=16, lr=3e-3, epochs=1,
    heldout_fraction=0.3, videos_per_batch=4, clips_per_video=4, seed=0,
)  # fmt: skip
POOLED = TrainConfig(
    text="learned", d=16, lr=3e-3, epochs=1, heldout_fraction=0.3, videos_per_batch=4, seed=0
)
EVERY = 10_000  # k: every clip of the root, so each clip's score is seen


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with one_torch_thread():
        root = paired_synthetic_root(tmp_path_factory.mktemp("search-tokens"), n_videos=12, n_steps=8)
        runs = {name: train(cfg, root)["run_id"] for name, cfg in (("tokens", TOKENS), ("pooled", POOLED))}
        shards = pair_shards(root)
        pairs = Pairs.concat([load_shard(root, s, "train", 0.0, with_text=False) for s in shards])
        videos = {v.video_id: v for v in load_store(root, shards, "train", 0.0).videos}
        yield {"root": root, "runs": runs, "pairs": pairs, "videos": videos, "query": pairs.texts[0]}


def _query(model: CheckpointEmbedder, query: str) -> torch.Tensor:
    return torch.from_numpy(model.text([query])[0])


@torch.no_grad()
def _own_tokens_score(
    model: CheckpointEmbedder, video: VideoLines, hit: dict[str, Any], q: torch.Tensor
) -> float:
    """The tower on one clip's per-second tokens alone (no padding, no batch), cut by training's function."""
    tokens = window_tokens(video, *clip_seconds(hit["start_ms"], hit["end_ms"]))
    return float(model.model.video(torch.from_numpy(tokens[None]))[0] @ q)


def test_a_token_tower_ranks_each_clips_per_second_tokens(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each clip was given to the tower as its stored pooled vector read as one token, an input it never
    trained on, so the ranking was of other vectors than the tower's; now each score is the tower's on the
    clip's per-second tokens, cut a few clips at a time (a shard's clips padded at once take gigabytes)."""
    batches: list[int] = []
    real_tokens_of = search_module.tokens_of

    def recording(*args: Any) -> np.ndarray:
        out = real_tokens_of(*args)
        batches.append(len(out))
        return out

    monkeypatch.setattr(search_module, "TOKEN_BATCH", 5)
    monkeypatch.setattr(search_module, "tokens_of", recording)
    with one_torch_thread():
        _, hits = search_clips(world["root"], world["query"], k=EVERY, run_id=world["runs"]["tokens"])
    pairs: Pairs = world["pairs"]
    assert len(hits) == len(pairs)
    model = CheckpointEmbedder.load(world["root"], world["runs"]["tokens"])[0]
    q = _query(model, world["query"])
    row_of = {c: i for i, c in enumerate(pairs.clip_ids)}
    with torch.no_grad():
        one_token = (model.model.video(torch.from_numpy(pairs.video.astype(np.float32))) @ q).numpy()
    got = np.array([hit["score"] for hit in hits])
    own = np.array([_own_tokens_score(model, world["videos"][hit["video_id"]], hit, q) for hit in hits])
    old = np.array([one_token[row_of[hit["clip_id"]]] for hit in hits])
    np.testing.assert_allclose(got, own, atol=1e-5)
    assert np.abs(got - old).max() > 1e-3
    assert np.all(np.diff(got) <= 0)  # best first
    assert sum(batches) == len(pairs) and max(batches) <= 5  # a few clips' tokens at a time


def test_a_pooled_tower_ranks_the_stored_vectors_bit_for_bit(world: dict[str, Any]) -> None:
    """The default tower's scores are its stored vectors', 4096 a batch, as before: the same floats."""
    with one_torch_thread():
        _, hits = search_clips(world["root"], world["query"], k=EVERY, run_id=world["runs"]["pooled"])
        model = CheckpointEmbedder.load(world["root"], world["runs"]["pooled"])[0]
        q = _query(model, world["query"])
        with torch.no_grad():
            scores = (
                model.model.video(torch.from_numpy(world["pairs"].video.astype(np.float32))) @ q
            ).tolist()
    pairs: Pairs = world["pairs"]
    expected = sorted(
        ((s, -i, pairs.clip_ids[i]) for i, s in enumerate(scores)), reverse=True
    )  # ties: the earlier clip first
    assert [(h["score"], h["clip_id"]) for h in hits] == [(s, c) for s, _, c in expected]


def test_clips_without_frame_rows_are_one_line(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token tower's clips whose video has no frame rows: one line naming them (exit 2), no traceback."""
    real = search_module.load_videos
    monkeypatch.setattr(search_module, "load_videos", lambda *a, **k: real(*a, **k)[1:])
    root: DataRoot = world["root"]
    out = CliRunner().invoke(
        app, ["search-clips", world["query"], "--data-root", root.url, "--run-id", world["runs"]["tokens"]]
    )
    assert out.exit_code == 2, out.output
    assert "no frame rows for 1 video(s)" in out.output and "Traceback" not in out.output
    assert "made again without them: rebuild the pairs (howto train)" in out.output


def test_clips_whose_frame_features_shard_is_gone_point_at_the_features_stage(tmp_path: Path) -> None:
    """The frame_features shard of a token tower's clips deleted (or its file lost): the line says to make it
    again with the features stage. Before, it said to rebuild the pairs (howto train), which reads no rows
    from a shard that is not there."""
    with one_torch_thread():
        root = paired_synthetic_root(tmp_path, n_videos=12, n_steps=8)
        run = train(TOKENS, root)["run_id"]
    shard = pair_shards(root)[0]
    delete_shard(root, "frame_features", shard)
    out = CliRunner().invoke(app, ["search-clips", "how to", "--data-root", root.url, "--run-id", run])
    assert out.exit_code == 2, out.output
    assert f"frame_features shard(s) {shard} gone: make them again (howto features run" in out.output
    assert "Traceback" not in out.output
