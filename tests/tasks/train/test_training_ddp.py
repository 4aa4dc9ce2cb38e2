"""`howto train` under torchrun with two CPU processes (gloo): both ranks train, rank 0 writes one run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from storage.shards import read_dataset
from tasks.synthetic.training import write_synthetic_root

BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_torchrun_two_ranks_share_the_batches(tmp_path: Path) -> None:
    root = write_synthetic_root(tmp_path / "data", n_videos=32, n_steps=16, dim=128)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    (tmp_path / "tmp").mkdir()
    # TMPDIR: torchrun's elastic agent leaves its run folder behind; keep it in the test's folder.
    env.update(
        {
            "OMP_NUM_THREADS": "1",
            "PREFECT_HOME": str(tmp_path / "prefect-home"),
            "TMPDIR": str(tmp_path / "tmp"),
        }
    )
    args = [
        str(BIN / "torchrun"), "--standalone", "--nproc-per-node", "2", "--",
        str(BIN / "howto"), "train", "--text", "learned", "--d", "32", "--lr", "0.003", "--epochs", "2",
        "--videos-per-batch", "4", "--heldout-fraction", "0.3", "--run-id", "ddp", "--device", "cpu", "--data-root", root.url,
    ]  # fmt: skip
    # --standalone: a local rendezvous on a free port. "--" ends torchrun's own options: without it argparse reads `--d` as an abbreviation of its flags.
    returncode, out = _run(args, env)
    assert returncode == 0, out[-4000:]
    assert "rank 0 of 2 (DDP)" in out and "rank 1 of 2 (DDP)" in out, out[-4000:]
    # Rank 0 alone reports and writes: one summary line, one metrics row per epoch, one checkpoint each.
    assert out.count("run ddp: 2 epochs") == 1, out[-4000:]
    rows = [r for r in read_dataset(root, "train_metrics").to_table().to_pylist() if r["run_id"] == "ddp"]
    assert [r["epoch"] for r in rows] == [1, 2]
    checkpoints = sorted(p.name for p in Path(root.path("train", "ddp", "checkpoints")).iterdir())
    assert checkpoints == ["epoch-1.pt", "epoch-2.pt"]
    # Pairs are counted over both ranks: together they see (almost) every training clip once per epoch.
    train_clips = sum(1 for r in read_dataset(root, "clip_pairs").to_table(columns=["video_id"]).to_pylist())
    assert 0.5 * train_clips <= rows[0]["train_pairs"] <= train_clips
    assert rows[1]["loss"] < rows[0]["loss"]
    # Again: the run is done, and rank 0 alone says so (each rank printed the summary before).
    returncode, again = _run(args, env)
    assert returncode == 0, again[-4000:]
    assert "already trained for 2 epochs" in again, again[-4000:]
    assert again.count("run ddp: 2 epochs") == 1, again[-4000:]


def _run(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run torchrun in its own process group, killed whole if the test stops first; (exit code, output)."""
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, out
