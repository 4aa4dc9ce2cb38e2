"""Held-out evaluation draws clips at random (seeded) across all held-out videos, not the first N."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from storage.layout import DataRoot
from storage.shards import read_shard
from tasks.evaluation.heldout import _heldout_count, sample_heldout
from tasks.synthetic.training import write_synthetic_root
from tasks.train.data import Pairs, load_shard, pair_shards
from tasks.train.prepare import build_pairs_shard, ready_shards
from tasks.train.split import is_heldout


def _root(tmp_path: Path) -> DataRoot:
    root = write_synthetic_root(tmp_path / "root", n_videos=60, clips_per_video=8, shards=3, dim=16)
    for shard in ready_shards(root):
        build_pairs_shard(root, shard)
    return root


def test_sample_spans_every_shard_and_is_seeded(tmp_path: Path) -> None:
    root = _root(tmp_path)
    shards = pair_shards(root)
    everything = sample_heldout(root, shards, 0.5, 10_000, seed=0, with_text=False)
    assert len(everything) > 40
    drawn = sample_heldout(root, shards, 0.5, 20, seed=0, with_text=False)
    assert len(drawn) == 20
    assert set(drawn.clip_ids) <= set(everything.clip_ids)
    # Not the first 20 in shard order: the draw reaches videos of every shard.
    assert drawn.clip_ids != everything.clip_ids[:20]
    shards_reached = {int(v[3:]) // 20 for v in drawn.video_ids}  # 20 videos per synthetic shard
    assert shards_reached == {0, 1, 2}
    assert len(set(drawn.video_ids)) > 8
    again = sample_heldout(root, shards, 0.5, 20, seed=0, with_text=False)
    assert again.clip_ids == drawn.clip_ids and np.array_equal(again.video, drawn.video)
    other = sample_heldout(root, shards, 0.5, 20, seed=1, with_text=False)
    assert other.clip_ids != drawn.clip_ids


def test_counts_and_draw_match_a_row_by_row_reference(tmp_path: Path) -> None:
    # Each video is hashed once per shard (heldout_mask): the counts, and so the seeded draw, are those of
    # is_heldout asked of every row.
    root = _root(tmp_path)
    shards = pair_shards(root)
    for fraction in (0.0, 0.3, 0.5, 1.0):
        counts = []
        for shard in shards:
            table = read_shard(root, "clip_pairs", shard)
            assert table is not None
            ids = table.column("video_id").to_pylist()
            counts.append(sum(is_heldout(v, fraction) for v in ids))
            assert _heldout_count(root, shard, fraction) == counts[-1]
        assert _heldout_count(root, 99, fraction) == 0  # no such shard
        every = Pairs.concat([load_shard(root, s, "heldout", fraction, with_text=False) for s in shards], 16)
        assert len(every) == sum(counts)
        rng = np.random.default_rng([3, 17])
        rows = (
            np.sort(rng.choice(len(every), 25, replace=False)) if len(every) > 25 else np.arange(len(every))
        )
        drawn = sample_heldout(root, shards, fraction, 25, seed=3, with_text=False)
        assert drawn.clip_ids == every.take(rows).clip_ids


def test_heldout_eval_of_a_checkpoint_matches_the_runs_last_epoch(tmp_path: Path) -> None:
    from tasks.evaluation.run import Setup, eval_heldout
    from tasks.train.config import TrainConfig
    from tasks.train.run import train

    root = _root(tmp_path)
    cfg = TrainConfig(text="learned", d=32, epochs=2, lr=1e-3, heldout_fraction=0.5, eval_max_clips=30,
                      videos_per_batch=8, run_id="tiny", device="cpu")  # fmt: skip
    metrics = train(cfg, root)["metrics"]
    result = eval_heldout(Setup(root))  # the newest run's latest checkpoint, its own split and draw
    assert result.checkpoint.run_id == "tiny"
    assert result.value("R@1") == metrics["R@1"] and result.value("MedR") == metrics["MedR"]
    assert next(r["n"] for r in result.rows if r["metric"] == "R@1") == metrics["candidates"] == 30
    assert eval_heldout(Setup(root)).cached


def _trained_tiny_root(tmp_path: Path) -> DataRoot:
    """A synthetic root with its pairs built and one tiny learned-text run ("tiny") trained on them."""
    from tasks.train.config import TrainConfig
    from tasks.train.run import train

    root = write_synthetic_root(tmp_path / "root", n_videos=24, n_steps=12, clips_per_video=8, dim=16)
    for shard in ready_shards(root):
        build_pairs_shard(root, shard)
    cfg = TrainConfig(text="learned", d=16, epochs=1, heldout_fraction=0.3, videos_per_batch=8,
                      run_id="tiny", device="cpu")  # fmt: skip
    train(cfg, root)
    return root


def test_heldout_eval_adds_fac_audio_retrieval_only_when_the_root_has_audio(tmp_path: Path) -> None:
    from tasks.audio.fac_checkpoint import save_fac
    from tasks.audio.fac_data import load_root, split_heldout
    from tasks.audio.fac_train import FACTrainConfig, evaluate_fac, train_fac
    from tasks.evaluation.audio import AUDIO_METRICS
    from tasks.evaluation.report import result_lines
    from tasks.evaluation.run import Setup, eval_heldout
    from tasks.synthetic.audio import write_synthetic_audio

    root = _trained_tiny_root(tmp_path)
    plain = eval_heldout(Setup(root))
    assert not any(r["metric"] in AUDIO_METRICS for r in plain.rows)
    assert not any("audio" in line for line in result_lines(plain))
    # Audio without a FAC checkpoint: exactly as before (the recorded evaluation is reused).
    write_synthetic_audio(root)
    assert eval_heldout(Setup(root)).cached
    # A FAC checkpoint: its video<->audio and zero-shot audio->text retrieval on its held-out clips.
    data, vids = load_root(root)
    fac_train, fac_heldout = split_heldout(data, vids, 0.3)
    fac_cfg = FACTrainConfig(epochs=3, d_fine=32, d_coarse=16)
    trained = train_fac(fac_train, fac_cfg)
    save_fac(root, trained, fac_cfg, 0.3)
    expected = evaluate_fac(trained, fac_heldout)
    with_audio = eval_heldout(Setup(root))
    assert not with_audio.cached
    assert with_audio.value("R@5") == plain.value("R@5")  # the text-video part is unchanged
    for metric in ("v2a_R@5", "a2v_R@5", "a2t_R@5"):
        assert abs((with_audio.value(metric) or -1.0) - expected[metric]) < 1e-6
    assert next(r["n"] for r in with_audio.rows if r["metric"] == "v2a_R@5") == expected["clips"] > 2
    assert any("a2t is zero-shot" in line for line in result_lines(with_audio))


def test_heldout_eval_leaves_out_a_fac_trained_on_features_of_another_encoder(tmp_path: Path) -> None:
    """The audio stage rerun with another encoder (`--set audio.encoder=cnn14`: 2048-wide rows where FAC
    learnt on 192): `howto eval heldout` scores text-video as ever and leaves the stale FAC's audio rows out.
    Before, it fed the new rows to the old FAC: a broadcast error at other widths, meaningless scores at equal
    ones."""
    from tasks.audio.fac_checkpoint import save_fac
    from tasks.audio.fac_data import load_root, split_heldout
    from tasks.audio.fac_train import FACTrainConfig, train_fac
    from tasks.evaluation.audio import AUDIO_METRICS
    from tasks.evaluation.run import Setup, eval_heldout
    from tasks.synthetic.audio import write_synthetic_audio

    root = _trained_tiny_root(tmp_path)
    write_synthetic_audio(root, encoder_hash="logmel")
    data, vids = load_root(root)
    fac_cfg = FACTrainConfig(epochs=1, d_fine=32, d_coarse=16)
    save_fac(root, train_fac(split_heldout(data, vids, 0.3)[0], fac_cfg), fac_cfg, 0.3)
    assert any(r["metric"] in AUDIO_METRICS for r in eval_heldout(Setup(root)).rows)
    for dim in (48, 32):  # another encoder's width, then one as wide as the FAC's
        write_synthetic_audio(root, dim=dim, seed=dim, encoder_hash=f"encoder-{dim}")
        result = eval_heldout(Setup(root))
        assert result.value("R@5") is not None
        assert not any(r["metric"] in AUDIO_METRICS for r in result.rows), dim
