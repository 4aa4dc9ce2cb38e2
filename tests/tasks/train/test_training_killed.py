"""Training killed (SIGKILL) in the middle of a save, then run again: it resumes and finishes as if it
had not been killed, and the kill leaves nothing behind."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from storage.layout import DataRoot
from tasks.synthetic.training import write_synthetic_root
from tasks.train.checkpoints import latest_checkpoint, list_epochs
from tasks.train.config import TrainConfig
from tasks.train.prepare import build_pairs_shard, ready_shards
from tasks.train.run import train
from tests.cpu import worker_threads

CFG = TrainConfig(text="learned", d=32, lr=3e-3, epochs=3, heldout_fraction=0.3, videos_per_batch=4, seed=1)

# Train CFG (as JSON) on a root, SIGKILLed exactly where `storage.atomic` is about to rename the temp file
# whose name ends with the given suffix, as a power cut or an OOM kill would.
KILLED_TRAINING = textwrap.dedent(
    """
    import os, signal, sys, torch
    import storage.atomic as atomic
    from tasks.train.config import TrainConfig
    from tasks.train.run import train
    root, cfg, suffix, threads = sys.argv[1:]
    torch.set_num_threads(int(threads))

    def kill_before_rename(tmp):
        if tmp.endswith(suffix):
            os.kill(os.getpid(), signal.SIGKILL)

    atomic.before_rename_hook = kill_before_rename
    train(TrainConfig.model_validate_json(cfg), root)
    """
)


@pytest.fixture(scope="module")
def pairs_root(tmp_path_factory: pytest.TempPathFactory) -> DataRoot:
    torch.set_num_threads(worker_threads())
    root = write_synthetic_root(tmp_path_factory.mktemp("killed-root"), n_videos=24, n_steps=12, dim=64)
    for shard in ready_shards(root):
        build_pairs_shard(root, shard)
    return root


def kill_training(root: DataRoot, cfg: TrainConfig, suffix: str) -> None:
    args = [root.url, cfg.model_dump_json(), suffix, str(worker_threads())]
    proc = subprocess.run([sys.executable, "-c", KILLED_TRAINING, *args], capture_output=True, timeout=300)
    assert proc.returncode == -9, proc.stderr.decode()[-3000:]


def test_a_kill_during_a_checkpoint_save_resumes_from_the_last_whole_checkpoint(pairs_root: DataRoot) -> None:
    """A kill between the checkpoint's temp write and its rename left `.tmp-<id>-epoch-2.pt`, which was
    listed as epoch 2: the rerun, `howto search-clips` and `howto eval` tried to open `epoch-2.pt`
    (FileNotFoundError, every time, until the file was removed by hand)."""
    cfg = CFG.model_copy(update={"run_id": "killed-in-save"})
    kill_training(pairs_root, cfg, "-epoch-2.pt")
    folder = Path(pairs_root.path("train", "killed-in-save", "checkpoints"))
    assert [p.name for p in folder.glob(".tmp-*-epoch-2.pt")], "the kill did not land in the save"
    assert list_epochs(pairs_root, "killed-in-save") == [1]
    assert latest_checkpoint(pairs_root) == str(folder / "epoch-1.pt")  # what search-clips and eval take

    resumed = train(cfg, pairs_root)
    whole = train(cfg.model_copy(update={"run_id": "not-killed"}), pairs_root)
    assert resumed["epochs"] == 3 and list_epochs(pairs_root, "killed-in-save") == [1, 2, 3]
    assert list(Path(pairs_root.path("train", "killed-in-save")).rglob(".tmp-*")) == []
    for key, value in whole["metrics"].items():
        assert resumed["metrics"][key] == pytest.approx(value, abs=1e-5), key
