"""Two processes that train the same run at once (two pipelines whose stages both include training) take
turns: the second waits for the first, then finds the run trained. Before, both trained every epoch."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import storage.shard_lock as shard_lock
from storage.layout import DataRoot
from tasks.train.config import TrainConfig
from tasks.train.run import train
from tests.tasks.train.synthetic_roots import one_torch_thread, paired_synthetic_root

CFG = TrainConfig(text="learned", d=32, lr=3e-3, epochs=3, heldout_fraction=0.3, videos_per_batch=4, seed=1)


@pytest.fixture
def root(tmp_path: Path) -> DataRoot:
    with one_torch_thread():
        return paired_synthetic_root(tmp_path / "root", n_videos=16, n_steps=8, dim=32)


def test_a_second_training_of_a_run_waits_then_finds_it_trained(
    root: DataRoot, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_epochs: list[int] = []
    second_epochs: list[int] = []
    waited: list[str] = []
    results: dict[str, dict[str, Any]] = {}
    threads: list[threading.Thread] = []
    second_waits = threading.Event()

    def on_wait(path: str) -> None:
        waited.append(path)
        second_waits.set()

    monkeypatch.setattr(shard_lock, "on_wait_hook", on_wait)

    def second() -> None:
        results["second"] = train(CFG, root, on_epoch=lambda row: second_epochs.append(row["epoch"]))

    def first_on_epoch(row: dict[str, Any]) -> None:
        first_epochs.append(row["epoch"])
        if row["epoch"] == 1:  # the first holds the run, one epoch in: the second starts now
            threads.append(threading.Thread(target=second, daemon=True))
            threads[0].start()
            # The second reaches the run while the first still trains it (or, unlocked, trains it too).
            second_waits.wait(timeout=20)

    with one_torch_thread():
        results["first"] = train(CFG, root, on_epoch=first_on_epoch)
        threads[0].join(timeout=120)
    assert not threads[0].is_alive()

    assert first_epochs == [1, 2, 3]
    assert waited and waited[0].endswith(f"{results['first']['run_id']}.lock")
    assert results["second"]["cached"] is True  # found trained: no epoch trained twice
    assert second_epochs == []
    assert results["second"]["checkpoint"] == results["first"]["checkpoint"]
