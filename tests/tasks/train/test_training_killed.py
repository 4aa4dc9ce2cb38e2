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
from storage.schemas import get_schema
from storage.shards import read_dataset
from tasks.synthetic.training import write_synthetic_root
from tasks.train.checkpoints import latest_checkpoint, list_epochs
from tasks.train.config import TrainConfig, run_shard_number
from tasks.train.prepare import build_pairs_shard, ready_shards
from tasks.train.run import train
from tests.cpu import worker_threads

CFG = TrainConfig(text="learned", d=32, lr=3e-3, epochs=3, heldout_fraction=0.3, videos_per_batch=4, seed=1)

# Train a config (as JSON) on a root, SIGKILLed exactly where `storage.atomic` is about to rename the n-th
# temp file whose name ends with the given suffix, as a power cut or an OOM kill would.
KILLED_TRAINING = textwrap.dedent(
    """
    import os, signal, sys, torch
    import storage.atomic as atomic
    from tasks.train.config import TrainConfig, run_shard_number
    from tasks.train.run import train
    root, cfg, suffix, nth, threads = sys.argv[1:]
    torch.set_num_threads(int(threads))
    seen = []

    def kill_before_rename(tmp):
        if tmp.endswith(suffix):
            seen.append(tmp)
            if len(seen) == int(nth):
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


def kill_training(root: DataRoot, cfg: TrainConfig, suffix: str, nth: int = 1) -> None:
    args = [root.url, cfg.model_dump_json(), suffix, str(nth), str(worker_threads())]
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
    assert resumed["epochs"] == 3 and list_epochs(pairs_root, "killed-in-save") == [1, 2, 3]
    assert list(Path(pairs_root.path("train", "killed-in-save")).rglob(".tmp-*")) == []
    assert_same_history(pairs_root, "killed-in-save", train(CFG, pairs_root)["run_id"])


def test_a_kill_while_the_last_epoch_is_saved_keeps_every_epoch_in_train_metrics(
    pairs_root: DataRoot,
) -> None:
    """A kill in the last epoch's save after its checkpoint was written, while its train_metrics shard was
    being rewritten (the old marker already removed), lost the run's train_metrics rows for good: the
    rerun found the last checkpoint, had no epoch left to train, and wrote only the model card."""
    cfg = CFG.model_copy(update={"run_id": "killed-last-epoch"})
    shard = run_shard_number("killed-last-epoch")
    kill_training(pairs_root, cfg, f"-part-{shard:05d}.parquet", nth=3)
    assert train(cfg, pairs_root)["epochs"] == 3
    assert_same_history(pairs_root, "killed-last-epoch", train(CFG, pairs_root)["run_id"])
    folder = Path(pairs_root.dataset_dir("train_metrics", get_schema("train_metrics").version))
    assert list(folder.rglob(".tmp-*")) == []


def assert_same_history(root: DataRoot, resumed: str, whole: str) -> None:
    """The resumed run's train_metrics rows are the uninterrupted run's (timings aside)."""
    rows = read_dataset(root, "train_metrics").to_table().to_pylist()
    by_run = {
        run: sorted((r for r in rows if r["run_id"] == run), key=lambda r: r["epoch"])
        for run in (resumed, whole)
    }
    assert [r["epoch"] for r in by_run[resumed]] == [r["epoch"] for r in by_run[whole]] == [1, 2, 3]
    for a, b in zip(by_run[resumed], by_run[whole], strict=True):
        for key in ("loss", "r_at_1", "r_at_5", "r_at_10", "median_rank", "train_pairs", "lr"):
            assert a[key] == pytest.approx(b[key], abs=1e-5), (a["epoch"], key)
