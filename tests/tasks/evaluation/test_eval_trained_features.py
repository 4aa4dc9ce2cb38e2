"""`howto eval` on a run whose features the data root has since made again otherwise: the benchmark's
videos get the features that run trained on (its recorded config), not the root's current ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flows.cli_eval import _setup
from tasks.synthetic.training import write_synthetic_root
from tasks.train.config import TrainConfig
from tasks.train.prepare import build_pairs_shard, ready_shards
from tasks.train.run import train


def _features(short_side_2d: int) -> dict[str, Any]:
    return {"models": ["resnet152", "resnext101"], "random_weights": True, "calibration_seed": 0,
            "short_side_2d": short_side_2d, "size_3d": 32, "precision": "fp32"}  # fmt: skip


def _root(path: Path, short_side_2d: int) -> Any:
    return write_synthetic_root(path, n_videos=12, n_steps=6, clips_per_video=6, dim=16,
                                features_config=_features(short_side_2d))  # fmt: skip


def test_a_run_is_evaluated_on_the_features_it_trained_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before, a run trained on 64-pixel features was given a benchmark's videos at the root's new 96 (the
    root's first frame_features marker), and its scores were recorded as that run's."""
    root = _root(tmp_path / "root", 64)
    for shard in ready_shards(root):
        build_pairs_shard(root, shard)
    train(TrainConfig(text="learned", d=16, epochs=1, heldout_fraction=0.3, videos_per_batch=4, run_id="old",
                      device="cpu"), root)  # fmt: skip
    # The same root, its frame_features made again at another size (their markers record it).
    _root(tmp_path / "root", 96)

    for checkpoint in ("old", None):  # named, and the default (the newest run)
        setup = _setup(checkpoint=checkpoint, data_root=root.url)()
        assert setup.features.short_side_2d == 64 and setup.features.random_weights
        assert "the checkpoint's run trained on (short_side_2d=64)" in setup.features_note
    # An option still overrides the one field it names.
    assert _setup(checkpoint="old", data_root=root.url, size_2d=128)().features.short_side_2d == 128


def test_a_run_without_a_recorded_config_gets_the_roots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run trained before its card recorded the features (no "features" in its data): as before, the
    root's recorded config."""
    import json

    root = _root(tmp_path / "root", 64)
    for shard in ready_shards(root):
        build_pairs_shard(root, shard)
    train(TrainConfig(text="learned", d=16, epochs=1, heldout_fraction=0.3, videos_per_batch=4, run_id="old",
                      device="cpu"), root)  # fmt: skip
    card = Path(root.path("train", "old", "model_card.json"))
    data = json.loads(card.read_text())
    del data["data"]["features"]
    card.write_text(json.dumps(data))
    _root(tmp_path / "root", 96)
    setup = _setup(checkpoint="old", data_root=root.url)()
    assert setup.features.short_side_2d == 96 and not setup.features_note


def test_a_run_on_other_features_is_refused_on_the_roots_clip_pairs(tmp_path: Path) -> None:
    """The root's frame_features made again at another size and its clip_pairs rebuilt from them: the old
    run's search-clips and held-out scores would rank vectors of a space it never saw. Before, both answered
    as if nothing had changed; now one line naming the change, exit 2. A run on the new pairs answers."""
    from typer.testing import CliRunner

    from flows.cli import app

    root = _root(tmp_path / "root", 64)
    for shard in ready_shards(root):
        build_pairs_shard(root, shard)
    cfg = TrainConfig(text="learned", d=16, epochs=1, heldout_fraction=0.3, videos_per_batch=4, device="cpu")
    train(cfg.model_copy(update={"run_id": "old"}), root)
    write_synthetic_root(root.url, n_videos=12, n_steps=6, clips_per_video=6, dim=16, seed=1,
                         features_config=_features(96))  # fmt: skip
    for shard in ready_shards(root):
        build_pairs_shard(root, shard)
    runner = CliRunner()
    for args in (["search-clips", "cut", "--run-id", "old"], ["search-clips", "cut"],
                 ["eval", "heldout", "--checkpoint", "old"]):  # fmt: skip
        out = runner.invoke(app, [*args, "--data-root", root.url])
        assert out.exit_code == 2, out.stdout + out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "short_side_2d 64 -> 96" in lines[0], out.stderr
    train(cfg.model_copy(update={"run_id": "new"}), root)
    out = runner.invoke(app, ["search-clips", "cut", "--data-root", root.url])
    assert out.exit_code == 0 and "/train/new/" in out.stdout, out.stdout + out.stderr
