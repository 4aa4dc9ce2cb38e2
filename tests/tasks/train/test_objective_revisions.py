"""An objective whose code changed what a run learns gets new run ids; the others keep theirs."""

from __future__ import annotations

import pytest

from tasks.common import config_hash
from tasks.train import config
from tasks.train.config import _LATER_FIELDS, RUNTIME_FIELDS, TrainConfig, preset, run_id_for, train_hash

DATA = "0123456789abcdef"


def _plain_hash(cfg: TrainConfig) -> str:
    """The hash before objectives had revisions (what every finished run's id was made from)."""
    defaults = TrainConfig.model_fields
    unset = {f for f in _LATER_FIELDS if getattr(cfg, f) == defaults[f].default}
    return config_hash(cfg, exclude=RUNTIME_FIELDS | unset)


@pytest.mark.parametrize("name", ["howto100m", "milnce"])
def test_objectives_at_their_first_revision_keep_their_run_ids(name: str) -> None:
    cfg = preset(name)
    assert config.OBJECTIVE_REVISIONS.get(cfg.objective, 1) == 1
    assert train_hash(cfg) == _plain_hash(cfg)


def test_tvts_runs_of_the_old_loss_are_not_taken_for_runs_of_the_new_one() -> None:
    # `train compare` on a data root that holds a finished tvts run of the old loss (mean of NormSoftmax's two
    # directions) found it by the same id and reported its numbers as the new code's.
    cfg = preset("tvts")
    assert train_hash(cfg) != _plain_hash(cfg)
    assert run_id_for(cfg, DATA) != f"run-{config.shard_hash(_plain_hash(cfg), DATA)[:12]}"
    assert run_id_for(cfg, DATA) == run_id_for(preset("tvts"), DATA)  # still stable: a rerun resumes


def test_tvts_runs_of_the_earlier_sorting_head_are_not_taken_for_runs_of_this_one() -> None:
    # Revision 2 (the loss fix) trained a 128-wide, 4-head sorting head without a final LayerNorm; a finished
    # run of it must not be reported as this head's.
    cfg = preset("tvts")
    assert train_hash(cfg) != config.shard_hash(_plain_hash(cfg), "tvts revision 2")
    assert train_hash(cfg) == config.shard_hash(_plain_hash(cfg), "tvts revision 3")


@pytest.mark.parametrize("encoder", ["pooled", "transformer"])
def test_videoclip_runs_whose_log_scored_the_stored_vectors_are_not_read_back(encoder: str) -> None:
    # A finished videoclip run's held-out recall (its log: `train compare` and `howto train` read it back)
    # was measured on clip_pairs' pooled vectors, where the lite tower trained on token means: found by the
    # same id, it was reported as this code's, which measures it on token means.
    cfg = preset("videoclip").model_copy(update={"video_encoder": encoder})
    assert train_hash(cfg) != _plain_hash(cfg)
    assert train_hash(cfg) == config.shard_hash(_plain_hash(cfg), "videoclip revision 2")
    assert run_id_for(cfg, DATA) == run_id_for(cfg.model_copy(), DATA)  # still stable: a rerun resumes


def test_a_bumped_revision_is_a_new_run_and_a_given_run_id_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = preset("milnce")
    before = run_id_for(cfg, DATA)
    monkeypatch.setitem(config.OBJECTIVE_REVISIONS, "milnce", 2)
    assert run_id_for(cfg, DATA) != before
    assert run_id_for(cfg.model_copy(update={"run_id": "mine"}), DATA) == "mine"


def test_compare_names_tvts_and_videoclip_runs_of_this_code_apart_and_keeps_the_other_names() -> None:
    from tasks.train.compare import method_config

    base = TrainConfig(text="learned", d=32)
    revisions = {"tvts": "tvts revision 3", "videoclip": "videoclip revision 2"}
    for method in ("infonce", "milnce", "tvts", "videoclip"):
        cfg = method_config(base, method, seed=0)
        plain = config_hash(cfg.model_copy(update={"run_id": None}), {"run_id"})
        expected = config.shard_hash(plain, revisions[method]) if method in revisions else plain
        expected = config.shard_hash(expected, "text learned revision 2")  # the base's text side
        assert cfg.run_id == f"compare-{method}-s0-{expected[:8]}"


@pytest.mark.parametrize("objective", ["pairs", "tvts"])
def test_learned_text_runs_of_the_vocabulary_with_heldout_words_are_new_runs(objective: str) -> None:
    # A learned run's vocabulary held the held-out captions' words; this code's holds the training split's.
    # The old run, found by the same id, failed to resume ("its model's weights do not fit": another table
    # size) or, finished, was read back as this code's. The other text sides keep their ids.
    learned = TrainConfig(text="learned", objective=objective)
    before = (
        config.shard_hash(_plain_hash(learned), f"{objective} revision 3")
        if objective == "tvts"
        else (_plain_hash(learned))
    )
    assert train_hash(learned) == config.shard_hash(before, "text learned revision 2")
    assert run_id_for(learned, DATA) == run_id_for(TrainConfig(text="learned", objective=objective), DATA)
    for text in ("minilm", "word2vec"):
        cfg = TrainConfig(text=text, word2vec_path=None)
        assert train_hash(cfg) == _plain_hash(cfg)
