"""The benchmarks (YouCook2, MSR-VTT, CrossTask) give a run's video tower what it trained on: a tower of
per-second tokens (videoclip, video_encoder="transformer") each clip's tokens, cut as training cuts them;
a pooled tower the pooled vectors it always got, bit for bit."""

from __future__ import annotations

import json
import math
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from models.video_tokens import TokenVideoEncoder
from storage.shards import read_dataset
from tasks.evaluation import embedder as embedder_module
from tasks.evaluation import run as eval_run
from tasks.evaluation.crosstask import second_spans_ms
from tasks.evaluation.embedder import CheckpointEmbedder, InputMismatch
from tasks.evaluation.features import BenchmarkFeatures
from tasks.evaluation.run import Setup, eval_crosstask, eval_msrvtt, eval_youcook2
from tasks.evaluation.scoring import retrieval_scores
from tasks.train.batches import pad_sequences, window_tokens
from tasks.train.config import TrainConfig
from tasks.train.pooling import MODELS, features_by_video, pool_clips
from tasks.train.prepare import build_pairs_shard, ready_shards
from tasks.train.run import train
from tasks.train.videos import VideoLines, load_store
from tests.tasks.train.synthetic_roots import one_torch_thread, paired_synthetic_root

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "benchmarks"
# Both runs pool their clip lines as the demo's run does (mean over the line widened by 2 s): a pooled
# tower's benchmark spans are pooled that way too; a token tower's tokens never are.
POOLING = {"clip_pool": "mean", "clip_context_s": 2.0}
TOKENS = TrainConfig(
    objective="videoclip", video_encoder="transformer", text="learned", d=16, lr=3e-3, epochs=1,
    heldout_fraction=0.3, videos_per_batch=4, clips_per_video=4, seed=0, **POOLING,
)  # fmt: skip
POOLED = TrainConfig(text="learned", d=16, lr=3e-3, epochs=1, heldout_fraction=0.3, videos_per_batch=4, seed=0,
                     **POOLING)  # fmt: skip  # the default tower: a gated unit on one pooled vector
# YouCook2 segments (s) of the 32 s synthetic videos: fractional ends, one the whole video.
SEGMENTS = [(1.4, 6.7), (8.0, 12.5), (0.0, 32.0), (20.2, 24.9)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A trained run of each tower on a synthetic root, and its held-out videos as benchmark videos."""
    with one_torch_thread():
        root = paired_synthetic_root(tmp_path_factory.mktemp("token-bench"), n_videos=16, n_steps=8)
        for shard in ready_shards(root):
            build_pairs_shard(root, shard, POOLED.pooling)
        runs = {name: train(cfg, root)["run_id"] for name, cfg in (("tokens", TOKENS), ("pooled", POOLED))}
        lines = {v.video_id: v for v in load_store(root, [0, 1], "heldout", TOKENS.heldout_fraction).videos}
        feats = features_by_video(read_dataset(root, "frame_features").to_table())
        yield {"root": root, "runs": runs, "lines": lines, "feats": {v: feats[v] for v in sorted(lines)[:3]}}


@pytest.fixture
def seen(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, list[Any]]:
    """Benchmark features are the root's rows (no extraction); what the checkpoint's video tower is fed and
    gives, and every fingerprint recorded, are kept."""
    monkeypatch.setattr(eval_run, "benchmark_features", lambda *a, **k: BenchmarkFeatures(world["feats"]))
    out: dict[str, list[Any]] = {"inputs": [], "outputs": [], "fingerprints": []}
    real_video, real_record = CheckpointEmbedder.video, eval_run.record

    def video(self: CheckpointEmbedder, x: np.ndarray) -> np.ndarray:
        out["inputs"].append(x)
        out["outputs"].append(real_video(self, x))
        return out["outputs"][-1]

    def record(*args: Any) -> Any:
        out["fingerprints"].append(args[5])
        return real_record(*args)

    monkeypatch.setattr(CheckpointEmbedder, "video", video)
    monkeypatch.setattr(eval_run, "record", record)
    folder = tmp_path / "videos"
    folder.mkdir()
    for vid in world["feats"]:
        (folder / f"{vid}.mp4").write_bytes(b"placeholder: features are the root's")
    return out


def _crosstask_release(tmp_path: Path, vids: list[str]) -> Path:
    """A CrossTask release of these videos, all of primary task 23521, each with two annotated steps."""
    release = tmp_path / "crosstask"
    (release / "annotations").mkdir(parents=True)
    (release / "tasks_primary.txt").write_text((FIXTURES / "crosstask" / "tasks_primary.txt").read_text())
    (release / "videos.csv").write_text("".join(f"23521,{v},https://example.invalid/{v}\n" for v in vids))
    for vid in vids:
        (release / "annotations" / f"23521_{vid}.csv").write_text("1,2.0,5.5\n3,10.0,14.0\n")
    return release


def _youcook2(world: dict[str, Any], tmp_path: Path) -> Path:
    database = {
        vid: {"subset": "validation", "duration": 32.0, "annotations": [
            {"segment": list(span), "sentence": f"step {i} of {vid}"} for i, span in enumerate(SEGMENTS)
        ]}
        for vid in world["feats"]
    }  # fmt: skip
    path = tmp_path / "youcookii_annotations_trainval.json"
    path.write_text(json.dumps({"database": database}))
    return path


def _tower(world: dict[str, Any], run: str) -> CheckpointEmbedder:
    return CheckpointEmbedder.load(world["root"], world["runs"][run])[0]


@torch.no_grad()
def _own_tokens(model: CheckpointEmbedder, video: VideoLines, start_s: float, end_s: float) -> np.ndarray:
    """What the tower gives for one clip alone: its seconds' tokens, cut by training's own function."""
    tokens = window_tokens(video, math.floor(start_s), math.ceil(end_s))
    return model.model.video(torch.from_numpy(tokens[None])).numpy()[0]


@torch.no_grad()
def _one_token(
    model: CheckpointEmbedder, rows: dict[str, np.ndarray], start_s: float, end_s: float
) -> np.ndarray:
    """The old input: the clip's pooled vector, read by the tower as one token."""
    span = np.array([[round(start_s * 1000), round(end_s * 1000)]], np.int64)
    return model.model.video(torch.from_numpy(pool_clips(rows, span, pooling=model.pooling))).numpy()[0]


def test_youcook2_gives_a_token_tower_each_clips_per_second_tokens(
    world: dict[str, Any], seen: dict[str, list[Any]], tmp_path: Path
) -> None:
    """Each YouCook2 clip was given to the tower as its pooled vector read as one token, an input it never
    trained on; now its embedding is the tower's on the clip's per-second tokens, as training fed it."""
    model = _tower(world, "tokens")
    result = eval_youcook2(Setup(world["root"], checkpoint=world["runs"]["tokens"]), _youcook2(world, tmp_path),
                           tmp_path / "videos")  # fmt: skip
    assert not result.cached and result.value("R@1") is not None
    (embedded,) = seen["outputs"]
    clips = [(vid, s, e) for vid in world["feats"] for s, e in SEGMENTS]  # kept in file order
    assert embedded.shape == (len(clips), TOKENS.d)
    for row, (vid, start, end) in zip(embedded, clips, strict=True):
        np.testing.assert_allclose(row, _own_tokens(model, world["lines"][vid], start, end), atol=1e-5)
        old = _one_token(model, world["feats"][vid].rows, start, end)
        assert np.abs(row - old).max() > 1e-3
    # Recorded before from one-token inputs: this evaluation is not read back as that one.
    assert seen["fingerprints"][0]["video_inputs"] == "per-second tokens"


def test_msrvtt_and_crosstask_give_a_token_tower_per_second_tokens(
    world: dict[str, Any], seen: dict[str, list[Any]], tmp_path: Path
) -> None:
    """MSR-VTT's whole videos and CrossTask's windows around each second were one averaged step each."""
    model, setup = _tower(world, "tokens"), Setup(world["root"], checkpoint=world["runs"]["tokens"])
    vids = list(world["feats"])
    csv = tmp_path / "MSRVTT_JSFUSION_test.csv"
    csv.write_text(
        "key,vid_key,video_id,sentence\n"
        + "".join(f"ret{i},k{i},{v},a video {v}\n" for i, v in enumerate(vids))
    )
    eval_msrvtt(setup, csv, videos_dir=tmp_path / "videos")
    (whole,) = seen["outputs"]
    for row, vid in zip(whole, vids, strict=True):
        np.testing.assert_allclose(row, _own_tokens(model, world["lines"][vid], 0, 32), atol=1e-5)
        assert np.abs(row - _one_token(model, world["feats"][vid].rows, 0, 32)).max() > 1e-3

    release = _crosstask_release(tmp_path, vids)
    seen["outputs"].clear()
    eval_crosstask(setup, release, tmp_path / "videos", split="all", chance_draws=0)
    assert len(seen["outputs"]) == len(vids)
    for per_second, vid in zip(seen["outputs"], vids, strict=True):
        windows = second_spans_ms(32, 5.0) / 1000
        assert len(per_second) == 32
        for row, (start, end) in zip(per_second, windows, strict=True):
            np.testing.assert_allclose(row, _own_tokens(model, world["lines"][vid], start, end), atol=1e-5)
    assert all(f.get("video_inputs") == "per-second tokens" for f in seen["fingerprints"])


def test_pooled_tower_scores_are_unchanged(
    world: dict[str, Any], seen: dict[str, list[Any]], tmp_path: Path
) -> None:
    """The default tower still gets each span pooled as its run's clips were, bit for bit, and its recorded
    evaluations keep their fingerprints (nothing is scored again)."""
    model, setup = _tower(world, "pooled"), Setup(world["root"], checkpoint=world["runs"]["pooled"])
    pooling, feats = POOLED.pooling, world["feats"]
    result = eval_youcook2(setup, _youcook2(world, tmp_path), tmp_path / "videos")
    spans = np.array([[round(s * 1000), round(e * 1000)] for s, e in SEGMENTS], np.int64)
    pooled = np.concatenate([pool_clips(feats[v].rows, spans, pooling=pooling) for v in feats])
    assert np.array_equal(seen["inputs"][0], pooled)
    texts = [f"step {i} of {vid}" for vid in feats for i in range(len(SEGMENTS))]
    expected = {
        (r["metric"], r["tie_rule"]): r["value"]
        for r in retrieval_scores(model.text(texts), model.video(pooled)).rows
    }
    assert {
        (r["metric"], r["tie_rule"]): r["value"]
        for r in result.rows
        if (r["metric"], r["tie_rule"]) in expected
    } == expected

    vids = list(feats)
    csv = tmp_path / "MSRVTT_JSFUSION_test.csv"
    csv.write_text(
        "key,vid_key,video_id,sentence\n"
        + "".join(f"ret{i},k{i},{v},a video {v}\n" for i, v in enumerate(vids))
    )
    seen["inputs"].clear()  # the expected scores above went through the tower too
    eval_msrvtt(setup, csv, videos_dir=tmp_path / "videos")
    whole = np.concatenate([pool_clips(feats[v].rows, np.array([[0, 32000]]), pooling=pooling) for v in vids])
    assert np.array_equal(seen["inputs"][0], whole)
    release = _crosstask_release(tmp_path, vids)
    eval_crosstask(setup, release, tmp_path / "videos", split="all", chance_draws=0)
    for given, vid in zip(seen["inputs"][1:], vids, strict=True):
        assert np.array_equal(given, pool_clips(feats[vid].rows, second_spans_ms(32, 5.0), pooling=pooling))
    assert len(seen["fingerprints"]) == 3 and not any("video_inputs" in f for f in seen["fingerprints"])
    assert eval_youcook2(setup, _youcook2(world, tmp_path), tmp_path / "videos").cached


def test_released_features_refuse_a_token_tower(world: dict[str, Any], tmp_path: Path) -> None:
    """youcook_val.pkl holds one max-pooled vector per clip: no per-second rows for the tower's tokens.
    It was scored as one token; now the command stops in one line before scoring, pointing at --videos."""
    d = world["feats"][next(iter(world["feats"]))].rows[MODELS[0]].shape[1]
    items = [
        {"id": f"v{i}", "2d": np.ones(d) * (i + 1), "3d": np.ones(d), "caption": f"clip {i}"}
        for i in range(4)
    ]
    pkl = tmp_path / "youcook_val.pkl"
    pkl.write_bytes(pickle.dumps(items))
    with pytest.raises(InputMismatch, match="per-second tokens.*--videos"):
        eval_youcook2(Setup(world["root"], checkpoint=world["runs"]["tokens"]), pkl=pkl)
    assert (
        eval_youcook2(Setup(world["root"], checkpoint=world["runs"]["pooled"]), pkl=pkl).value("R@1")
        is not None
    )


def _old_token_scores(world: dict[str, Any], model: CheckpointEmbedder, texts: list[str]) -> tuple[Any, ...]:
    """The inputs, outputs and metric rows as they were: every clip's float32 tokens padded at once, one
    call of the tower."""
    seqs = [
        window_tokens(world["lines"][vid], math.floor(start), math.ceil(end))
        for vid in world["feats"]
        for start, end in SEGMENTS
    ]
    padded = pad_sequences(seqs, max(len(s) for s in seqs))[0]
    with torch.no_grad():
        out = model.model.video(torch.from_numpy(padded)).numpy()
    rows = {(r["metric"], r["tie_rule"]): r["value"] for r in retrieval_scores(model.text(texts), out).rows}
    return padded, out, rows


@pytest.mark.parametrize("batch", [None, 5])
def test_token_inputs_are_held_as_float16_and_embedded_a_batch_at_a_time(
    world: dict[str, Any],
    seen: dict[str, list[Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    batch: int | None,
) -> None:
    """A token tower's padded inputs were float32 and went to the tower 4096 clips at once: YouCook2's
    3,350 clips came to 1.8 GB before the tower's own float32 copies of them. They are float16 values to
    begin with: now held so (the same numbers), and cast back TOKEN_BATCH clips at a time. With every clip
    in one batch (this benchmark's 12 < 256) the scores are the same floats; in batches of 5, the tower's
    smaller matrix products may round otherwise (a few 1e-8 here) and the metrics are the same."""
    if batch is not None:
        monkeypatch.setattr(embedder_module, "TOKEN_BATCH", batch)
    fed: list[tuple[int, torch.dtype]] = []
    real_forward = TokenVideoEncoder.forward

    def forward(self: TokenVideoEncoder, x: torch.Tensor) -> torch.Tensor:
        fed.append((len(x), x.dtype))
        return real_forward(self, x)

    monkeypatch.setattr(TokenVideoEncoder, "forward", forward)
    model = _tower(world, "tokens")
    path = tmp_path / "youcookii_annotations_trainval.json"
    path.write_text(
        _youcook2(world, tmp_path).read_text().replace("step ", f"a step {batch} ")
    )  # not read back
    result = eval_youcook2(
        Setup(world["root"], checkpoint=world["runs"]["tokens"]), path, tmp_path / "videos"
    )
    assert not result.cached
    calls = [n for n, _ in fed]
    texts = [f"a step {batch} {i} of {vid}" for vid in world["feats"] for i in range(len(SEGMENTS))]
    padded, old, expected = _old_token_scores(world, model, texts)
    (given,) = seen["inputs"]
    assert given.dtype == np.float16 and np.array_equal(given, padded)
    assert calls == ([12] if batch is None else [5, 5, 2])
    assert {dtype for _, dtype in fed} == {torch.float32}
    if batch is None:
        assert np.array_equal(seen["outputs"][0], old)
    else:
        np.testing.assert_allclose(seen["outputs"][0], old, atol=1e-6)
    got = {(r["metric"], r["tie_rule"]): r["value"] for r in result.rows}
    assert {key: got[key] for key in expected} == expected
