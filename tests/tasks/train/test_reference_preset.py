"""`--preset howto100m`: the reference's settings, offline word2vec from a path, a one-line error
without it, and a checkpoint that evaluation can load back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from flows.cli import app
from models.text import tokenize
from storage.layout import DataRoot
from tasks.synthetic.training import step_texts
from tasks.train.checkpoints import latest_checkpoint, load_state, model_from_state
from tasks.train.config import TrainConfig, preset, train_hash
from tasks.train.run import TrainingDataError, train
from tasks.train.stopwords import GLASGOW_STOP_WORDS, remove_stop_words
from tests.tasks.train.synthetic_roots import one_torch_thread, paired_synthetic_root


def test_preset_is_the_reference_recipe() -> None:
    cfg = preset("howto100m", word2vec_path="w.bin")
    assert (cfg.objective, cfg.text, cfg.standardise, cfg.masked_word_max) == (
        "howto100m",
        "word2vec",
        False,
        False,
    )
    assert (cfg.stop_words, cfg.min_span_s, cfg.videos_per_batch, cfg.clips_per_video) == (
        "glasgow",
        5.0,
        32,
        64,
    )
    assert (cfg.drop_last, cfg.epochs, cfg.d, cfg.text_hidden, cfg.lr, cfg.lr_decay) == (
        True,
        15,
        4096,
        4096,
        1e-4,
        0.9,
    )
    assert preset("howto100m", d=64).text_hidden == 64  # the text width follows d
    with pytest.raises(ValueError, match="unknown preset"):
        preset("clip")


def test_earlier_configs_keep_their_run_ids() -> None:
    # The new fields are left out of the hash at their defaults (this value predates them).
    assert train_hash(TrainConfig()) == "96a9a279041f53f5"
    assert TrainConfig(loss="milnce").objective == "milnce"  # the published MIL-NCE by its name


def test_stop_words_are_the_references_list() -> None:
    assert len(GLASGOW_STOP_WORDS) == 370
    assert {"first", "next", "the", "youtube", "gonna", "you're"} <= GLASGOW_STOP_WORDS
    assert remove_stop_words("First, I'm gonna cut THE red pepper") == "cut red pepper"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataRoot]:
    with one_torch_thread():
        yield paired_synthetic_root(tmp_path_factory.mktemp("ref"), n_videos=24, n_steps=12)


def write_word2vec(path: Path, words: set[str], dim: int = 12) -> Path:
    """A word2vec text file with random vectors (the GoogleNews file is 3.6 GB and offline here)."""
    rng = np.random.default_rng(0)
    lines = [f"{len(words)} {dim}"] + [
        w + " " + " ".join(f"{x:.4f}" for x in rng.standard_normal(dim)) for w in sorted(words)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_preset_trains_offline_with_a_word2vec_file(root: DataRoot, tmp_path: Path) -> None:
    words = {t for s in step_texts(12) for t in tokenize(s)} | {"the", "a"}
    w2v = write_word2vec(tmp_path / "w2v.txt", words)
    cfg = preset(
        "howto100m", word2vec_path=str(w2v), d=32, epochs=1, videos_per_batch=4, clips_per_video=8,
        heldout_fraction=0.3, run_id="reference",
    )  # fmt: skip
    result = train(cfg, root)
    assert result["epochs"] == 1
    state = load_state(root, latest_checkpoint(root, "reference") or "")
    extra = state["extra"]
    assert extra["text_hidden"] == 32 and extra["masked_words"] is False and extra["objective"] == "howto100m"
    assert not {"the", "a"} & set(extra["vocab"])  # stop words left out of the vocabulary
    model, vocab = model_from_state(state)
    assert model.text.fc.out_features == 32 and not model.text.masked
    assert torch.equal(model.video.mean, torch.zeros_like(model.video.mean))  # no standardisation
    assert vocab is not None and vocab.encode("the red pepper a", 4)[2:] == [0, 0]  # 'the', 'a' dropped


def test_missing_word2vec_is_a_one_line_error(root: DataRoot, tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["train", "--preset", "howto100m", "--data-root", root.url])
    assert out.exit_code == 2 and "Traceback" not in out.output
    line = out.stderr.strip()
    assert "\n" not in line and "GoogleNews-vectors-negative300.bin" in line and "--word2vec" in line
    out = runner.invoke(
        app,
        ["train", "--preset", "howto100m", "--word2vec", str(tmp_path / "none.bin"), "--data-root", root.url],
    )
    assert out.exit_code == 2 and "none.bin: no such word2vec file" in out.stderr
    with pytest.raises(TrainingDataError, match="GoogleNews-vectors-negative300.bin"):
        train(preset("howto100m", word2vec_path=str(tmp_path / "none.bin")), root)
