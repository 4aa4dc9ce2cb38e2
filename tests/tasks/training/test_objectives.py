"""Each seed method learns on synthetic data (3 seeds, mean held-out R@1 vs the shuffled-caption
control), its batches have the method's shape, and TVTS's sorting uses the video."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from models.evaluate import evaluate_pairs
from models.train_loop import make_optimizer
from storage.layout import DataRoot
from tasks.training.checkpoints import latest_checkpoint, load_state, model_from_state
from tasks.training.config import TrainConfig
from tasks.training.objective_run import ObjectiveTrainer
from tasks.training.prepare import build_pairs_shard, ready_shards
from tasks.training.run import train
from tasks.training.synthetic import write_synthetic_root
from tasks.training.tvts_step import sort_accuracy
from tasks.training.videos import load_store

# Small and quick: learned words, a narrow text pooling, few draws per video.
BASE = TrainConfig(
    text="learned", d=64, text_hidden=256, lr=3e-3, epochs=3, heldout_fraction=0.3, videos_per_batch=6
)
SEEDS = (0, 1, 2)
RECIPES = {
    "howto100m": {"objective": "howto100m", "clips_per_video": 8},
    "milnce": {"objective": "milnce", "clips_per_video": 16, "videos_per_batch": 12},
    # Pairs span several lines here, so they need more draws to pin words to moments.
    "videoclip": {"objective": "videoclip", "clips_per_video": 32, "epochs": 10, "retrieval_batches": True},
    "tvts": {"objective": "tvts", "sort_windows": 2, "clips_per_video": 32, "temperature": 0.05},
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataRoot]:
    torch.set_num_threads(2)
    data = write_synthetic_root(tmp_path_factory.mktemp("objectives"), n_videos=48, n_steps=24, dim=128)
    for shard in ready_shards(data):
        build_pairs_shard(data, shard)
    yield data


def _r1(root: DataRoot, recipe: dict[str, object], seed: int, shuffled: bool) -> float:
    """Held-out R@1 after the run's epochs: the Trainer's batches, loss and evaluation, without the
    checkpoints and report (the compare test covers those)."""
    cfg = TrainConfig(**{**BASE.model_dump(), **recipe, "seed": seed, "shuffle_pairs": shuffled})
    torch.manual_seed(seed)
    trainer = ObjectiveTrainer(cfg, root)
    model, _ = trainer.build()
    optimizer, scheduler = make_optimizer(model, cfg.lr, cfg.lr_decay)
    loss_fn = trainer.make_loss()
    for epoch in range(1, cfg.epochs + 1):
        trainer.train_one_epoch(model, loss_fn, optimizer, trainer.batches(epoch))
        scheduler.step()
    held = trainer.heldout()
    video, text = trainer.eval_inputs(held), trainer.text_of(held, np.arange(len(held)))
    return evaluate_pairs(model, video, text, torch.device("cpu"))["R@1"]


@pytest.mark.parametrize("name", list(RECIPES))
def test_objective_beats_the_shuffled_control(root: DataRoot, name: str) -> None:
    real = np.mean([_r1(root, RECIPES[name], s, False) for s in SEEDS])
    shuffled = np.mean([_r1(root, RECIPES[name], s, True) for s in SEEDS])
    chance = 1 / 100  # ~100 held-out clips
    assert real >= shuffled + 0.1, (name, real, shuffled)
    assert real > 3 * chance


def _first_batches(cfg: TrainConfig, root: DataRoot, n: int = 3) -> list:  # type: ignore[type-arg]
    trainer = ObjectiveTrainer(cfg, root)
    batches = trainer.batches(1)
    return [next(batches) for _ in range(n)]


def test_howto100m_batches_are_videos_times_draws_with_spans_of_5s(root: DataRoot) -> None:
    cfg = BASE.model_copy(update={"objective": "howto100m", "clips_per_video": 64, "drop_last": True})
    for batch in _first_batches(cfg, root):
        assert len(batch) == 6 * 64  # with replacement: 64 draws from 8-line videos
        assert batch.groups.tolist() == np.repeat(np.arange(6), 64).tolist()


def test_milnce_batches_hold_one_clip_per_video_and_bags_of_4(root: DataRoot) -> None:
    cfg = BASE.model_copy(update={"objective": "milnce", "clips_per_video": 2})
    for batch in _first_batches(cfg, root):
        assert batch.video.shape[0] == 6 and batch.text.shape[0] == 6 * 4
        assert batch.groups.tolist() == list(range(6))


def test_tvts_sorting_uses_the_video(root: DataRoot) -> None:
    """Sorting accuracy on held-out windows: well above chance (1/4); with each window's video tokens
    shuffled in time, or its four transcripts made equal, back to chance."""
    cfg = TrainConfig(
        **{**BASE.model_dump(), **RECIPES["tvts"], "epochs": 4, "clips_per_video": 64, "run_id": "tvts-probe"}
    )
    train(cfg, root)
    state = load_state(root, latest_checkpoint(root, "tvts-probe") or "")
    trainer = ObjectiveTrainer(cfg, root)
    model, _ = trainer.build()
    model.load_state_dict(state["model"])
    model.eval()
    held = load_store(root, ready_shards(root), "heldout", cfg.heldout_fraction).videos
    encode = trainer.encode_texts
    plain = sort_accuracy(model, held, encode)
    shuffled_time = sort_accuracy(model, held, encode, shuffle_time=True)
    same_text = sort_accuracy(model, held, encode, same_text=True)
    assert plain > 0.25 + 0.4, plain
    assert abs(shuffled_time - 0.25) < 0.1, shuffled_time
    assert same_text == pytest.approx(0.25)
    # The checkpoint embeds without its sorting head (evaluation and search load it so).
    reloaded, _ = model_from_state(state)
    assert not len(reloaded.heads)
