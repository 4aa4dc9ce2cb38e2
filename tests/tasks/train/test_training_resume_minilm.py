"""A run whose objective encodes captions with MiniLM as it draws them (TVTS, VideoCLIP) resumes after a
crash to the same losses, recalls and weights as the same run straight through."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch

from storage.layout import DataRoot
from tasks.synthetic.training import step_texts
from tasks.train.checkpoints import latest_checkpoint, load_state
from tasks.train.config import TrainConfig
from tasks.train.prepare import cache_text_shard, ready_shards
from tasks.train.run import train
from tasks.train.stage import minilm_encode
from tests.tasks.train.synthetic_roots import one_torch_thread, paired_synthetic_root

BASE = TrainConfig(text="minilm", d=32, lr=3e-3, epochs=3, heldout_fraction=0.3, videos_per_batch=4, seed=1)
RECIPES = {
    "tvts": {"objective": "tvts", "sort_windows": 2, "clips_per_video": 8},
    # Its texts are spans of several captions, drawn anew every epoch: no cache holds them.
    "videoclip": {"objective": "videoclip", "clips_per_video": 4},
}
TIMES = {"epoch_s", "load_s"}
# Captions of 4 to 19 words, as narrations are: MiniLM pads a group of them to its longest.
_TAIL = "slowly and carefully with both hands until it looks right and then wipe the table clean".split()
CAPTIONS = [f"{text} {' '.join(_TAIL[: i % 16])}".strip() for i, text in enumerate(step_texts(40))]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataRoot]:
    with one_torch_thread():
        data = paired_synthetic_root(
            tmp_path_factory.mktemp("resume-minilm"), n_videos=16, n_steps=40, captions=CAPTIONS
        )
        # The held-out pairs' caption vectors, as `howto train` caches them first.
        for shard in ready_shards(data):
            cache_text_shard(data, shard, minilm_encode)
        yield data


class Crash(Exception):
    pass


def _crash_after_epoch_1(row: dict[str, Any]) -> None:
    if row["epoch"] == 1:
        raise Crash  # after the epoch's checkpoint, as a killed process would leave it


def _last_state(root: DataRoot, run_id: str) -> dict[str, Any]:
    path = latest_checkpoint(root, run_id)
    assert path is not None
    return load_state(root, path)


@pytest.mark.parametrize("objective", list(RECIPES))
def test_a_crashed_minilm_run_resumes_bit_for_bit(root: DataRoot, objective: str) -> None:
    """The resumed process starts with no caption vectors in memory, so it encodes the epoch's captions in
    other groups than the straight run did; MiniLM gave a caption a vector ~1e-7 apart depending on its
    group, and the resumed run's loss drifted from the fifth decimal on."""
    cfg = TrainConfig(**{**BASE.model_dump(), **RECIPES[objective]})
    with one_torch_thread():
        train(cfg.model_copy(update={"run_id": f"{objective}-straight"}), root)
        crashed = cfg.model_copy(update={"run_id": f"{objective}-crashed"})
        with pytest.raises(Crash):
            train(crashed, root, on_epoch=_crash_after_epoch_1)
        assert _last_state(root, crashed.run_id or "")["epoch"] == 1
        train(crashed, root)

    straight, resumed = _last_state(root, f"{objective}-straight"), _last_state(root, f"{objective}-crashed")
    rows = [[{k: v for k, v in r.items() if k not in TIMES | {"run_id"}} for r in s["extra"]["history"]]
            for s in (straight, resumed)]  # fmt: skip
    assert len(rows[0]) == 3 and rows[1] == rows[0]
    for name, weights in straight["model"].items():
        assert torch.equal(resumed["model"][name], weights), name
