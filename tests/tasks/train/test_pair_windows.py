"""The training pairs an epoch's batches are drawn from: read window by window each epoch, or, where every
shard fits in one window, decoded once per run and reused, with the same batches row for row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import tasks.train.run as train_run
from storage.layout import DataRoot
from storage.shards import read_shard, write_shard
from tasks.bench.training import write_bench_pairs
from tasks.train.config import TrainConfig
from tasks.train.data import Pairs, group_batches, make_batch
from tasks.train.objective_run import ObjectiveTrainer
from tasks.train.run import Trainer

SHARDS = 3


def _root(tmp_path: Path) -> DataRoot:
    """Three shards of 8 videos x 5 clips, where video bench00000 (shard 0) also has the first video of
    shard 1's clips: a video across shards, whose rows' order in a window follows the shards' order."""
    root = DataRoot.from_any(str(tmp_path / "data"))
    write_bench_pairs(root, videos=24, clips=5, d_video=8, d_text=4, shards=SHARDS)
    table = read_shard(root, "clip_pairs", 1)
    assert table is not None
    first = table.column("video_id")[0].as_py()
    moved = pc.if_else(pc.equal(table.column("video_id"), first), "bench00000", table.column("video_id"))
    table = table.set_column(table.schema.get_field_index("video_id"), "video_id", moved)
    write_shard(root, "clip_pairs", 1, table, config_hash="bench", code_version="bench", rows_in=len(table))
    return root


def _cfg(shards_in_memory: int, shuffle_pairs: bool = False, objective: str = "pairs") -> TrainConfig:
    return TrainConfig(
        d=16, videos_per_batch=3, clips_per_video=2, heldout_fraction=0.2, shards_in_memory=shards_in_memory,
        shuffle_pairs=shuffle_pairs, objective=objective, drop_last=objective != "pairs", device="cpu",
    )  # fmt: skip


def _read_anew(trainer: Trainer, epoch: int, drop_last: bool) -> list[tuple[np.ndarray, ...]]:
    """An epoch's batches as they were drawn before windows were kept: every window's shards read again
    and concatenated in the epoch's shard order."""
    cfg = trainer.cfg
    rng = np.random.default_rng([cfg.seed, epoch])
    order = [int(s) for s in rng.permutation(trainer.shards)]
    out = []
    for start in range(0, len(order), cfg.shards_in_memory):
        window = Pairs.concat([trainer.train_pairs(s) for s in order[start : start + cfg.shards_in_memory]])
        for rows in group_batches(
            window.video_ids, rng, cfg.videos_per_batch, cfg.clips_per_video, drop_last
        ):
            out.append(_arrays(make_batch(window, rows, trainer.text_of)))
    return out


def _arrays(batch: object) -> tuple[np.ndarray, ...]:
    return tuple(getattr(batch, f).numpy() for f in ("video", "text", "groups", "order"))


@pytest.mark.parametrize("shards_in_memory", [1, 2, SHARDS])
@pytest.mark.parametrize("shuffle_pairs", [False, True])
def test_every_epoch_has_the_batches_of_its_windows_read_anew(
    tmp_path: Path, shards_in_memory: int, shuffle_pairs: bool
) -> None:
    trainer = Trainer(_cfg(shards_in_memory, shuffle_pairs), _root(tmp_path))
    assert len(trainer.shards) == SHARDS
    for epoch in (1, 2, 3):
        got = [_arrays(b) for b in trainer.batches(epoch)]
        expected = _read_anew(trainer, epoch, drop_last=False)
        assert len(got) == len(expected) > 4
        for g, e in zip(got, expected, strict=True):
            for a, b in zip(g, e, strict=True):
                assert a.dtype == b.dtype and np.array_equal(a, b)


def test_the_objective_trainers_pair_batches_follow_the_same_windows(tmp_path: Path) -> None:
    trainer = ObjectiveTrainer(_cfg(SHARDS, objective="pairs"), _root(tmp_path))
    for epoch in (1, 2):
        got = [_arrays(b) for b in trainer.batches(epoch)]
        expected = _read_anew(trainer, epoch, drop_last=trainer.cfg.drop_last)
        assert len(got) == len(expected) > 4
        assert all(
            np.array_equal(a, b)
            for g, e in zip(got, expected, strict=True)
            for a, b in zip(g, e, strict=True)
        )


@pytest.mark.parametrize(("shards_in_memory", "reads"), [(SHARDS, SHARDS), (16, SHARDS), (2, 3 * SHARDS)])
def test_shards_are_decoded_once_a_run_only_when_they_all_fit_one_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shards_in_memory: int, reads: int
) -> None:
    trainer = Trainer(_cfg(shards_in_memory), _root(tmp_path))
    loaded: list[int] = []
    load_shard = train_run.load_shard

    def counting(root: DataRoot, shard: int, *args: object, **kwargs: object) -> Pairs:
        loaded.append(shard)
        return load_shard(root, shard, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(train_run, "load_shard", counting)
    clips = [sum(len(b.groups) for b in trainer.batches(epoch)) for epoch in (1, 2, 3)]
    assert sorted(loaded) == sorted(list(range(SHARDS)) * (reads // SHARDS))
    assert clips[0] == clips[1] == clips[2] > 0  # every epoch drew from all the training shards


def test_a_kept_window_holds_each_training_row_once(tmp_path: Path) -> None:
    root = _root(tmp_path)
    trainer = Trainer(_cfg(SHARDS), root)
    order = [2, 0, 1]
    (kept, rows), *rest = list(trainer.pair_windows(order))
    assert not rest and len(kept) == len(rows) == len(np.unique(rows))
    expected = Pairs.concat([trainer.train_pairs(s) for s in order])
    assert [kept.clip_ids[i] for i in rows] == expected.clip_ids
    assert np.array_equal(kept.video[rows], expected.video)
    assert pa.array(expected.clip_ids).unique().to_pylist() == expected.clip_ids  # no row twice
