"""A re-crawl that added no clip leaves the training run as it was: its empty shards (a re-check shard, new
videos all dropped) are not in the run's data hash, so the chain's training finds the run trained."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import torch

from storage.layout import DataRoot
from storage.shards import delete_shard, list_markers, read_shard, write_shard
from tasks.common import config_hash
from tasks.evaluation import run as evaluation_run
from tasks.evaluation.results import record
from tasks.evaluation.run import Setup, eval_heldout
from tasks.synthetic.training import write_synthetic_root
from tasks.train import prepare
from tasks.train.checkpoints import latest_checkpoint
from tasks.train.compare import compare
from tasks.train.config import TrainConfig, run_id_for
from tasks.train.prepare import build_pairs_shard, data_snapshot, earlier_pairs_hash, ready_shards
from tasks.train.run import train
from tests.cpu import worker_threads

CFG = TrainConfig(text="learned", d=32, lr=3e-3, epochs=1, heldout_fraction=0.3, videos_per_batch=4, seed=1)


def _root(tmp_path: Path) -> DataRoot:
    torch.set_num_threads(worker_threads())
    root = write_synthetic_root(tmp_path, n_videos=12, n_steps=6, dim=64)
    for shard in ready_shards(root):
        build_pairs_shard(root, shard)
    return root


def _add_shard(root: DataRoot, shard: int, empty: bool) -> None:
    """What a re-crawl's new videos shard gives training: clips and frame_features shards (none, or shard
    0's again), then its clip_pairs shard, built as the chain builds it."""
    for dataset in ("clips", "frame_features"):
        table = read_shard(root, dataset, 0)
        assert table is not None
        part = table.slice(0, 0) if empty else table
        write_shard(
            root, dataset, shard, part, config_hash="recrawl", code_version="t", rows_in=part.num_rows
        )
    build_pairs_shard(root, shard)


def test_a_recrawl_that_added_no_clip_trains_no_new_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = _root(tmp_path)
    first = train(CFG, root)
    named = train(CFG.model_copy(update={"run_id": "weekly"}), root)
    assert not first["cached"] and not named["cached"]
    _add_shard(root, 7, empty=True)  # before, a new default run id: the same data trained again
    with caplog.at_level(logging.INFO, logger="tasks.train.run"):
        again = train(CFG, root)
    assert again["run_id"] == first["run_id"] and again["cached"]
    assert data_snapshot(root)["empty_shards"] == 1
    assert "1 clip_pairs shard(s) with no pairs" in caplog.text and "already trained" in caplog.text
    # A run named with --run-id is read back too (before: refused, "trained on other clip_pairs").
    assert train(CFG.model_copy(update={"run_id": "weekly"}), root)["cached"]
    # Clips the run has not seen still make another run.
    _add_shard(root, 8, empty=False)
    assert train(CFG, root)["run_id"] != first["run_id"]


def test_a_run_begun_when_empty_shards_counted_is_still_found(tmp_path: Path) -> None:
    """A root that already had an empty shard: its run's id was made from a hash that counted it. That run is
    this data's run still (resumed, or found trained), not begun again under the new id."""
    root = _root(tmp_path)
    _add_shard(root, 7, empty=True)
    snapshot = data_snapshot(root)
    earlier = run_id_for(CFG, earlier_pairs_hash(snapshot["per_shard"]))
    assert earlier != run_id_for(CFG, snapshot["hash"])
    train(CFG.model_copy(update={"run_id": earlier}), root)  # as the code before wrote it
    again = train(CFG, root)
    assert again["run_id"] == earlier and again["cached"]


def _as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    """The code before empty shards were left out: the data hash counted them."""
    monkeypatch.setattr(prepare, "pairs_hash", earlier_pairs_hash)


def test_a_run_trained_when_empty_shards_counted_is_still_the_roots_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A setting changed and restored reads the first run back (latest_checkpoint): a run trained on the root's
    pairs under the hash that counted an empty shard is still on the root's pairs. Before, it was not taken
    for current, and search-clips and eval took the newer run trained on other pairs."""
    root = _root(tmp_path)
    _add_shard(root, 7, empty=True)
    with monkeypatch.context() as old:
        _as_before(old)
        first = train(CFG, root)["run_id"]
    _add_shard(root, 8, empty=False)
    other = train(CFG, root)["run_id"]  # newer, on pairs the root then held
    delete_shard(root, "clip_pairs", 8)  # the root holds the first run's pairs again
    assert other != first
    checkpoint = latest_checkpoint(root)
    assert checkpoint is not None and checkpoint.split("/")[-3] == first


def test_compare_reads_back_its_runs_trained_when_empty_shards_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`howto train compare`'s run ids carry the data hash: a comparison run when an empty shard counted in
    it is read back after the upgrade. Before, every method and seed was trained again."""
    root = _root(tmp_path)
    _add_shard(root, 7, empty=True)
    base = CFG.model_copy(update={"seed": 0})

    def compare_once() -> dict[str, object]:
        [result] = compare(root, base, ["infonce"], [0], control="", progress=lambda _line: None)
        return result.runs[0]

    with monkeypatch.context() as old:
        _as_before(old)
        first = compare_once()
    again = compare_once()
    assert again["cached"] is True and again["run_id"] == first["run_id"]


def test_heldout_eval_is_read_back_after_a_recrawl_that_added_no_clip(tmp_path: Path) -> None:
    """The run is the same and so are its held-out clips: `howto eval heldout` reads its result back. Before,
    the empty shard changed the evaluation's fingerprint and it was scored again."""
    root = _root(tmp_path)
    train(CFG, root)
    assert not eval_heldout(Setup(root)).cached
    _add_shard(root, 7, empty=True)
    assert eval_heldout(Setup(root)).cached


def test_heldout_eval_recorded_when_empty_shards_counted_is_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An evaluation recorded by the code before, with an empty shard already there, is found too."""
    root = _root(tmp_path)
    _add_shard(root, 7, empty=True)
    train(CFG, root)

    def record_as_before(*args: Any, **_earlier: Any) -> Any:
        # The fingerprint the code before gave this evaluation: its pairs counted every clip_pairs shard.
        shards = {str(m.shard): m.config_hash for m in list_markers(root, "clip_pairs")}
        return record(*args[:5], {**args[5], "pairs": config_hash(shards)}, *args[6:])

    with monkeypatch.context() as old:
        old.setattr(evaluation_run, "record", record_as_before)
        assert not eval_heldout(Setup(root)).cached
    assert eval_heldout(Setup(root)).cached


def _with_fac(root: DataRoot) -> None:
    """audio_features beside every clips shard and a FAC checkpoint: eval heldout scores audio too."""
    from tasks.audio.fac_checkpoint import save_fac
    from tasks.audio.fac_data import load_root, split_heldout
    from tasks.audio.fac_train import FACTrainConfig, train_fac
    from tasks.synthetic.audio import write_synthetic_audio

    write_synthetic_audio(root)
    data, vids = load_root(root)
    fac_cfg = FACTrainConfig(epochs=1, d_fine=16, d_coarse=8)
    save_fac(root, train_fac(split_heldout(data, vids, CFG.heldout_fraction)[0], fac_cfg), fac_cfg,
             CFG.heldout_fraction)  # fmt: skip


def _recrawl_with_audio(root: DataRoot, shard: int) -> None:
    """A re-crawl that added no video: its clip_pairs shard and its audio_features shard are empty (the
    audio stage's config, so the FAC checkpoint still matches the root's features)."""
    _add_shard(root, shard, empty=True)
    table = read_shard(root, "audio_features", 0)
    assert table is not None
    write_shard(root, "audio_features", shard, table.slice(0, 0), config_hash="synthetic",
                own_hash="synthetic", code_version="synthetic", rows_in=0)  # fmt: skip


def test_heldout_eval_with_audio_is_read_back_after_a_recrawl_that_added_no_clip(tmp_path: Path) -> None:
    """On a root with audio the fingerprint also holds the audio_features shards: an empty one changes no
    score either. Before, it changed the fingerprint and the evaluation was scored again."""
    from tasks.evaluation.audio import AUDIO_METRICS

    root = _root(tmp_path)
    train(CFG, root)
    _with_fac(root)
    first = eval_heldout(Setup(root))
    assert not first.cached and any(r["metric"] in AUDIO_METRICS for r in first.rows)
    _recrawl_with_audio(root, 7)
    again = eval_heldout(Setup(root))
    assert again.cached and any(r["metric"] in AUDIO_METRICS for r in again.rows)


@pytest.mark.parametrize("pairs_counted_too", [False, True])
def test_heldout_eval_with_audio_recorded_when_empty_shards_counted_is_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pairs_counted_too: bool
) -> None:
    """Recorded by the code before (empty audio_features shards counted; with them, before ec6ba45, empty
    clip_pairs shards too), with the empty shards already there: read back, not scored again."""
    root = _root(tmp_path)
    train(CFG, root)
    _with_fac(root)
    _recrawl_with_audio(root, 7)
    counting = evaluation_run.audio_fingerprint

    def fingerprint_as_before(root: DataRoot, fac: Any, count_empty: bool = False) -> dict[str, Any]:
        return counting(root, fac, count_empty=True)

    def record_as_before(*args: Any, **_earlier: Any) -> Any:
        shards = {str(m.shard): m.config_hash for m in list_markers(root, "clip_pairs")}
        return record(*args[:5], {**args[5], "pairs": config_hash(shards)}, *args[6:])

    with monkeypatch.context() as old:
        old.setattr(evaluation_run, "audio_fingerprint", fingerprint_as_before)
        if pairs_counted_too:
            old.setattr(evaluation_run, "record", record_as_before)
        assert not eval_heldout(Setup(root)).cached
    assert eval_heldout(Setup(root)).cached
