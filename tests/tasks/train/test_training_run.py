"""A training run on a synthetic data root: outputs, resume, search, control and CLI errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from flows.cli import app
from models.sorting import TranscriptSorter
from storage.layout import DataRoot
from storage.shards import read_dataset
from tasks.synthetic.training import write_synthetic_root
from tasks.train.checkpoints import list_epochs, load_state, model_from_state
from tasks.train.config import TrainConfig
from tasks.train.prepare import build_pairs_shard, ready_shards
from tasks.train.run import TrainingDataError, train
from tasks.train.search import search_clips
from tests.cpu import worker_threads

# Learned words and a small d keep this fast; the MiniLM side is covered by the flow test.
CFG = TrainConfig(text="learned", d=64, lr=3e-3, epochs=2, heldout_fraction=0.3, videos_per_batch=4, seed=1)


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataRoot]:
    torch.set_num_threads(worker_threads())
    root = write_synthetic_root(tmp_path_factory.mktemp("train-root"), n_videos=48, n_steps=24, dim=256)
    for shard in ready_shards(root):
        build_pairs_shard(root, shard)
    yield root


def test_run_writes_checkpoints_metrics_plot_and_card(synthetic_root: DataRoot) -> None:
    result = train(CFG, synthetic_root)
    run_id = result["run_id"]
    assert list_epochs(synthetic_root, run_id) == [1, 2]
    metrics = read_dataset(synthetic_root, "train_metrics").to_table().to_pylist()
    mine = [m for m in metrics if m["run_id"] == run_id]
    assert [m["epoch"] for m in mine] == [1, 2] and mine[1]["loss"] < mine[0]["loss"]
    base = Path(synthetic_root.path("train", run_id))
    assert (base / "loss_recall.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = json.loads((base / "model_card.json").read_text())
    assert set(card["metrics"]) >= {"R@1", "R@5", "R@10", "MedR"}
    assert card["config"]["text"] == "learned" and card["data"]["clips"] == 48 * 8 and card["code_version"]
    assert card["metrics"]["R@5"] == pytest.approx(mine[1]["r_at_5"])
    # Same config and data: nothing to do the second time.
    assert train(CFG, synthetic_root)["cached"] is True


def test_resume_continues_after_the_last_checkpoint(synthetic_root: DataRoot) -> None:
    cfg = CFG.model_copy(update={"run_id": "resume-test", "epochs": 1})
    train(cfg, synthetic_root)
    first = load_state(
        synthetic_root, synthetic_root.path("train", "resume-test", "checkpoints", "epoch-1.pt")
    )
    seen: list[int] = []
    result = train(
        cfg.model_copy(update={"epochs": 3}), synthetic_root, on_epoch=lambda row: seen.append(row["epoch"])
    )
    assert seen == [2, 3] and result["epochs"] == 3
    last = load_state(synthetic_root, result["checkpoint"])
    assert [h["epoch"] for h in last["extra"]["history"]] == [1, 2, 3]
    assert last["scheduler"]["last_epoch"] == 3 and first["scheduler"]["last_epoch"] == 1


def test_a_tvts_run_of_the_earlier_sorting_head_does_not_resume_but_still_evaluates(
    synthetic_root: DataRoot,
) -> None:
    """A run named with --run-id whose checkpoint holds the sorting head of objective tvts revision 2 (128
    wide, 4 heads, no final LayerNorm): resuming it is a TrainingDataError that says why and what to do (it
    was a traceback from load_state_dict); evaluation, which leaves the head out, still loads it."""
    cfg = CFG.model_copy(
        update={"objective": "tvts", "run_id": "tvts-old-head", "epochs": 1, "sort_windows": 2}
    )
    path = train(cfg, synthetic_root)["checkpoint"]
    state = load_state(synthetic_root, path)
    old_head = TranscriptSorter(cfg.d, d_model=128, heads=4).state_dict()
    towers = {k: v for k, v in state["model"].items() if not k.startswith("heads.")}
    state["model"] = towers | {
        f"heads.sorter.{k}": v for k, v in old_head.items() if not k.startswith("encoder.norm.")
    }
    torch.save(state, path)
    with pytest.raises(TrainingDataError) as caught:
        train(cfg.model_copy(update={"epochs": 2}), synthetic_root)
    message = str(caught.value)
    assert message.startswith(f"{path}: cannot resume run tvts-old-head: ")
    assert "heads.sorter.encoder.norm.bias" in message and "(128, 64) in the file, (256, 64) here" in message
    assert "objective tvts is at revision 3" in message and "give another --run-id" in message
    assert list_epochs(synthetic_root, "tvts-old-head") == [1]  # nothing written
    model, _ = model_from_state(load_state(synthetic_root, path))
    assert not len(model.heads)
    assert torch.equal(model.state_dict()["video.unit.fc.weight"], towers["video.unit.fc.weight"])


def test_trained_model_beats_a_shuffled_control(synthetic_root: DataRoot) -> None:
    cfg = CFG.model_copy(update={"epochs": 4, "run_id": "real"})
    real = train(cfg, synthetic_root)["metrics"]
    control = train(cfg.model_copy(update={"shuffle_pairs": True, "run_id": "control"}), synthetic_root)[
        "metrics"
    ]
    chance = 5 / control["candidates"]
    assert real["R@5"] >= 0.8, real
    assert control["R@5"] < 3 * chance + 0.1, control
    assert control["MedR"] > 4 * real["MedR"]


def test_search_finds_clips_of_the_query_step(synthetic_root: DataRoot) -> None:
    train(CFG.model_copy(update={"epochs": 4, "run_id": "real"}), synthetic_root)
    path, hits = search_clips(synthetic_root, "wash the red pepper", k=5, run_id="real")
    assert path.endswith("epoch-4.pt") and len(hits) == 5
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert sum(h["text"] == "wash the red pepper" for h in hits) >= 3


def test_search_over_damaged_clip_pairs_says_so(tmp_path: Path) -> None:
    """Every clip_pairs file cut short after its marker: search-clips printed the checkpoint, no clip and
    exit 0. Now one line naming the damaged file and what rebuilds it, exit 2."""
    root = write_synthetic_root(tmp_path, n_videos=12, n_steps=4, dim=32, shards=1)
    for shard in ready_shards(root):
        build_pairs_shard(root, shard)
    train(CFG.model_copy(update={"epochs": 1, "d": 16}), root)
    shard = Path(root.shard_path("clip_pairs", 1, 0))
    shard.write_bytes(shard.read_bytes()[:100])
    out = CliRunner().invoke(app, ["search-clips", "wash the red pepper", "--data-root", str(tmp_path)])
    assert out.exit_code == 2 and "Traceback" not in out.output, out.output
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "run the train stage first (howto train" in last, last
    assert f"({shard}): shard file has 100 bytes, its marker says" in last, last


def test_empty_root_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TrainingDataError, match="no clip_pairs"):
        train(CFG, tmp_path)


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["search-clips", "slice zucchini", "--data-root", str(tmp_path)])
    assert out.exit_code == 2 and "no checkpoint" in out.stderr and "Traceback" not in out.output
    out = runner.invoke(app, ["train", "--text", "word2vec", "--word2vec", str(tmp_path / "nope.bin")])
    assert out.exit_code == 2 and "nope.bin: no such word2vec file" in out.stderr
    out = runner.invoke(app, ["train", "--loss", "triplet", "--data-root", str(tmp_path)])
    # A choice option: typer's usage error names the option and the allowed values.
    assert out.exit_code == 2 and "--loss" in out.stderr and "is not one of" in out.stderr
    assert "Traceback" not in out.output


def test_split_has_no_overlap(synthetic_root: DataRoot) -> None:
    from tasks.train.data import load_shard

    train_ids = set(load_shard(synthetic_root, 0, "train", 0.3, False).video_ids)
    held_ids = set(load_shard(synthetic_root, 0, "heldout", 0.3, False).video_ids)
    assert train_ids and held_ids and not train_ids & held_ids
    assert np.isin(list(held_ids), list(train_ids)).sum() == 0


def test_each_split_keeps_every_clip_with_its_own_vector(synthetic_root: DataRoot) -> None:
    """The split selects the vectors as an array and the other columns as a table: row for row they
    still belong together, and the two splits share out the shard."""
    from storage.shards import read_shard
    from tasks.train.data import load_shard, vectors_to_numpy

    whole = read_shard(synthetic_root, "clip_pairs", 0)
    assert whole is not None
    by_clip = dict(
        zip(whole.column("clip_id").to_pylist(), vectors_to_numpy(whole.column("vector")), strict=True)
    )
    seen = []
    for split in ("train", "heldout"):
        pairs = load_shard(synthetic_root, 0, split, 0.3, False)
        assert len(pairs.video) == len(pairs.clip_ids)
        for clip, vector in zip(pairs.clip_ids, pairs.video, strict=True):
            assert np.array_equal(vector, by_clip[clip])
        seen += pairs.clip_ids
    assert sorted(seen) == sorted(by_clip)


def test_the_default_checkpoint_is_never_a_control_run(tmp_path: Path) -> None:
    """`train compare` trains its shuffled-caption control last: search and eval still default to the
    newest real run, also while the control is still training (no model card yet)."""
    import os

    from tasks.evaluation.embedder import NoCheckpoint, resolve_checkpoint
    from tasks.train.checkpoints import latest_checkpoint
    from tests.tasks.train.synthetic_roots import paired_synthetic_root

    root = paired_synthetic_root(tmp_path / "root", n_videos=8, n_steps=4, dim=16)
    small = CFG.model_copy(update={"d": 8, "epochs": 1})
    control_cfg = small.model_copy(update={"shuffle_pairs": True, "run_id": "compare-shuffled-infonce-s0"})
    train(control_cfg, root)
    with pytest.raises(NoCheckpoint, match="only control runs .* --checkpoint compare-shuffled-infonce-s0"):
        resolve_checkpoint(root, None)
    out = CliRunner().invoke(app, ["search-clips", "pepper", "--data-root", root.url])
    assert out.exit_code == 2 and "--run-id compare-shuffled-infonce-s0" in out.stderr, out.output
    real = train(small.model_copy(update={"run_id": "real-run"}), root)["checkpoint"]
    control = latest_checkpoint(root, "compare-shuffled-infonce-s0")
    assert control is not None
    os.utime(control, (os.path.getmtime(real) + 60,) * 2)  # the control written last, as compare does
    assert latest_checkpoint(root) == resolve_checkpoint(root, None) == real
    assert search_clips(root, "wash the red pepper", k=1)[0] == real
    os.remove(root.path("train", "compare-shuffled-infonce-s0", "model_card.json"))  # still training
    assert latest_checkpoint(root) == real
    assert resolve_checkpoint(root, "compare-shuffled-infonce-s0") == control  # named: used


def test_missing_pairs_say_what_to_run_first_the_same_everywhere(tmp_path: Path) -> None:
    """`howto train` and `howto audio fac` read clip_pairs: both name what is really missing, in the same
    words: the captions and features stages when their shards are missing, else the train stage."""
    import shutil

    from storage.shards import list_markers
    from tasks.audio.fac_data import load_root

    empty = DataRoot.from_any(tmp_path / "empty")
    Path(empty.url).mkdir()
    with pytest.raises(TrainingDataError) as by_train:
        train(CFG, empty)
    with pytest.raises(FileNotFoundError) as by_fac:
        load_root(empty)
    both = (
        f"{empty.url}: no clip_pairs shards, and no finished clips or frame_features shards to pool them "
        "from: run the captions stage (howto captions fetch) and the features stage (howto features run) "
        "first"
    )
    assert str(by_train.value) == str(by_fac.value) == both
    out = CliRunner().invoke(app, ["audio", "fac", "--data-root", empty.url])
    assert out.exit_code == 2 and out.stderr == f"error: {both}\n", out.output

    root = write_synthetic_root(tmp_path / "synthetic", n_videos=4, n_steps=2, dim=8, shards=1)
    with pytest.raises(
        FileNotFoundError, match=r"no clip_pairs shards yet: run the train stage first \(howto train"
    ):
        load_root(root)  # inputs there, pairs never pooled
    assert list_markers(root, "clips")
    shutil.rmtree(Path(root.dataset_dir("clips", 1)) / "_markers")  # the captions stage never finished
    message = (
        "no finished clips shards to pool them from: run the captions stage (howto captions fetch) first"
    )
    for fails in (lambda: train(CFG, root), lambda: load_root(root)):
        with pytest.raises((TrainingDataError, FileNotFoundError)) as caught:
            fails()
        assert str(caught.value) == f"{root.url}: no clip_pairs shards, and {message}"


def test_a_named_run_is_neither_read_back_nor_resumed_on_rebuilt_pairs(tmp_path: Path) -> None:
    """`howto train --run-id NAME` after the pairs were rebuilt from new upstream data (a captions option
    changed, a features shard redone with fewer videos): one line that says so and the ways on. Before, a
    finished run answered 'already trained' with its old scores, and an unfinished one resumed its epochs
    on the new pairs, with nothing to tell either from a run on the data in the root."""
    import os

    from tests.tasks.train.synthetic_roots import paired_synthetic_root

    root = paired_synthetic_root(tmp_path / "root", n_videos=12, n_steps=4, dim=16)
    small = CFG.model_copy(update={"d": 8, "epochs": 1})
    train(small.model_copy(update={"run_id": "named"}), root)
    train(small.model_copy(update={"run_id": "half-done"}), root)
    os.remove(root.path("train", "half-done", "model_card.json"))  # stopped before its last epoch's card
    rebuilt = paired_synthetic_root(tmp_path / "root", n_videos=8, n_steps=4, dim=16)
    for run_id, epochs in (("named", 1), ("half-done", 2)):
        with pytest.raises(TrainingDataError, match=f"run {run_id} was trained on other clip_pairs"):
            train(small.model_copy(update={"run_id": run_id, "epochs": epochs}), rebuilt)
    fresh = train(small.model_copy(update={"run_id": "named-again"}), rebuilt)
    assert fresh["cached"] is False
    assert train(small.model_copy(update={"run_id": "named-again"}), rebuilt)["cached"] is True


def test_the_default_checkpoint_is_the_newest_run_on_the_pairs_the_root_holds(tmp_path: Path) -> None:
    """`--set train.clip_pool=mean` trains a run on mean-pooled pairs; restored to max, the pairs are pooled
    as before and the first run is read back: search and eval default to it again. Before, they took the
    newest checkpoint written, the mean run, and refused the max-pooled pairs ('rebuild them with --clip-pool
    mean')."""
    import os

    from tasks.evaluation.embedder import resolve_checkpoint
    from tasks.train.checkpoints import latest_checkpoint
    from tasks.train.pooling import ClipPooling
    from tests.tasks.train.synthetic_roots import paired_synthetic_root

    root = paired_synthetic_root(tmp_path / "root", n_videos=8, n_steps=4, dim=16)
    small = CFG.model_copy(update={"d": 8, "epochs": 1})
    first = train(small, root)["checkpoint"]
    mean = small.model_copy(update={"clip_pool": "mean"})
    for shard in ready_shards(root):
        build_pairs_shard(root, shard, ClipPooling("mean", 0.0))
    other = train(mean, root)["checkpoint"]
    os.utime(other, (os.path.getmtime(first) + 60,) * 2)  # written after the first, as it was
    assert latest_checkpoint(root) == other
    for shard in ready_shards(root):  # the setting restored: the pairs as the first run had them
        build_pairs_shard(root, shard)
    again = train(small, root)
    assert again["cached"] is True and again["checkpoint"] == first
    assert latest_checkpoint(root) == resolve_checkpoint(root, None) == first
    assert search_clips(root, "wash the red pepper", k=1)[0] == first
