"""The training precision setting: hashed only when set, resolved on the machine, recorded, on the CLI."""

from __future__ import annotations

from pathlib import Path

import torch
from typer.testing import CliRunner

from flows.cli import app
from storage.layout import DataRoot
from tasks.common import config_hash, shard_hash
from tasks.synthetic.training import write_synthetic_root
from tasks.train.checkpoints import load_state
from tasks.train.config import _LATER_FIELDS, RUNTIME_FIELDS, TrainConfig, train_hash
from tasks.train.prepare import build_pairs_shard, ready_shards
from tasks.train.report import read_card
from tasks.train.run import train
from tests.cpu import worker_threads

CFG = TrainConfig(text="learned", d=32, lr=3e-3, epochs=1, heldout_fraction=0.3, videos_per_batch=4, seed=1)


def test_default_precision_keeps_earlier_run_ids_and_bf16_is_a_new_run() -> None:
    # fp32 (the default) hashes as before the field existed, so earlier runs still resume.
    assert train_hash(CFG) == train_hash(CFG.model_copy(update={"precision": "fp32"}))
    # CFG's learned text side is at its revision 2 (tasks/train/config.py TEXT_REVISIONS), the rest as before.
    plain = config_hash(CFG, exclude=RUNTIME_FIELDS | set(_LATER_FIELDS))
    assert train_hash(CFG) == shard_hash(plain, "text learned revision 2")
    hashes = {train_hash(CFG.model_copy(update={"precision": p})) for p in ("fp32", "bf16", "auto")}
    assert len(hashes) == 3


def test_bf16_run_records_its_precision(tmp_path: Path) -> None:
    torch.set_num_threads(worker_threads())
    root: DataRoot = write_synthetic_root(tmp_path, n_videos=16, n_steps=8, dim=64)
    for shard in ready_shards(root):
        build_pairs_shard(root, shard)
    result = train(CFG.model_copy(update={"precision": "bf16", "run_id": "bf16"}), root)
    card = read_card(root, "bf16")
    assert card is not None and card["precision"] == "bf16" and card["config"]["precision"] == "bf16"
    assert load_state(root, result["checkpoint"])["extra"]["precision"] == "bf16"
    assert result["metrics"]["R@1"] is not None


def test_cli_refuses_an_unknown_precision(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["train", "--precision", "fp8", "--data-root", str(tmp_path)])
    # typer's usage error: exit 2, the option and its allowed values named, no traceback.
    assert out.exit_code == 2 and "--precision" in out.output and "Traceback" not in out.output
    assert "fp32" in out.output and "bf16" in out.output


def test_auto_resolves_to_a_concrete_precision(tmp_path: Path) -> None:
    from models.cpu_precision import cpu_bf16
    from tasks.train.run import Trainer

    root: DataRoot = write_synthetic_root(tmp_path, n_videos=8, n_steps=4, dim=32)
    for shard in ready_shards(root):
        build_pairs_shard(root, shard)
    trainer = Trainer(CFG.model_copy(update={"precision": "auto", "device": "cpu"}), root)
    assert trainer.precision == cpu_bf16().precision
