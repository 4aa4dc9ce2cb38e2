"""`howto bench retrieval-ceiling`: step labels, tie ceiling, ridge probe, 1-NN and chance on hand-made
inputs, and the command on a small synthetic root with a CrossTask folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from flows.cli import app
from storage.layout import DataRoot
from storage.shards import read_shard
from tasks.bench.retrieval_ceiling import (
    fit_ridge,
    grouped_folds,
    label_clip,
    majority_chance,
    nearest_neighbour_accuracy,
    prior_chance,
    ridge_probe,
    step_label,
    tie_ceiling,
)
from tasks.bench.retrieval_ceiling_root import measure
from tasks.synthetic.training import step_texts, write_synthetic_root
from tasks.train.prepare import build_pairs_shard, cache_text_shard
from tasks.train.split import is_heldout


def test_tie_ceiling_groups_of_1_2_and_10_at_k_5() -> None:
    labels = ["a"] + ["b"] * 2 + ["c"] * 10
    # a: 1, b: 1 + 1, c: 10 x 5/10 -> (1 + 2 + 5) / 13
    assert tie_ceiling(labels, 5) == pytest.approx(8 / 13)
    assert tie_ceiling(labels, 10) == pytest.approx(1.0)
    assert tie_ceiling(["c"] * 10, 1) == pytest.approx(0.1)


def test_label_is_the_step_of_largest_overlap_else_no_step() -> None:
    segments = [(1, 0.0, 4.0), (2, 4.0, 10.0), (5, 20.0, 22.0)]
    assert label_clip("7", segments, 3.0, 8.0) == "7/step 2"  # 1 s of step 1, 4 s of step 2
    assert label_clip("7", segments, 1.0, 4.5) == "7/step 1"
    assert label_clip("7", segments, 19.0, 30.0) == "7/step 5"
    assert label_clip("7", segments, 12.0, 18.0) == "7/no step" == step_label("7", None)
    assert label_clip("7", segments, 10.0, 12.0) == "7/no step"  # touching an end is no overlap
    assert label_clip("7", [(3, 0.0, 5.0), (1, 5.0, 10.0)], 4.0, 6.0) == "7/step 3"  # tie: first listed
    assert label_clip("7", [], 0.0, 1.0) == "7/no step"


def _clusters(rng: np.random.Generator, n: int, d: int) -> tuple[np.ndarray, list[str]]:
    labels = ["left" if i % 2 else "right" for i in range(n)]
    centres = {"left": -np.ones(d), "right": np.ones(d)}
    x = np.stack([centres[label] for label in labels]) + 0.3 * rng.standard_normal((n, d))
    return x, labels


@pytest.mark.parametrize("d", [8, 200])  # n > d (primal) and d > n (dual)
def test_ridge_separates_two_clusters(d: int) -> None:
    rng = np.random.default_rng(0)
    x, labels = _clusters(rng, 60, d)
    test_x, test_labels = _clusters(rng, 40, d)
    groups = [f"v{i // 6}" for i in range(60)]
    result = ridge_probe(x, labels, groups, test_x, test_labels)
    assert result.accuracy == 1.0
    assert result.tuning[result.lam] == 1.0


def test_ridge_dual_form_equals_the_primal_formula() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((12, 30))
    labels = ["a", "b", "c"] * 4
    probe = fit_ridge(x, labels, 5.0)
    z = (x - x.mean(0)) / x.std(0)
    y = np.eye(3)[[0, 1, 2] * 4]
    primal = np.linalg.solve(z.T @ z + 5.0 * np.eye(30), z.T @ (y - y.mean(0)))
    np.testing.assert_allclose(probe.weights, primal, atol=1e-8)
    np.testing.assert_allclose(probe.bias, [1 / 3] * 3)


def test_ridge_is_at_chance_on_shuffled_labels() -> None:
    """Separable clusters whose labels are shuffled: nothing to learn, held-out accuracy ~ chance."""
    accuracies, chances = [], []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        x, _ = _clusters(rng, 200, 50)
        test_x, _ = _clusters(rng, 200, 50)
        names = ["a", "b", "c", "d"]
        labels = [names[i] for i in rng.permutation(np.arange(200) % 4)]
        test_labels = [names[i] for i in rng.permutation(np.arange(200) % 4)]
        groups = [f"v{i // 10}" for i in range(200)]
        accuracies.append(ridge_probe(x, labels, groups, test_x, test_labels).accuracy)
        chances.append(prior_chance(labels, test_labels))
    assert chances == [0.25] * 5
    assert max(accuracies) < 0.4
    assert abs(np.mean(accuracies) - 0.25) < 0.06, accuracies


def test_grouped_folds_keep_a_video_in_one_fold() -> None:
    groups = [f"v{i % 7}" for i in range(50)]
    folds = grouped_folds(groups, 4)
    for g in set(groups):
        assert len({folds[i] for i, h in enumerate(groups) if h == g}) == 1
    assert set(folds.tolist()) == {0, 1, 2, 3}


def test_nearest_neighbour_and_chance_by_hand() -> None:
    train = np.array([[1.0, 0.0], [0.0, 1.0]])
    test = np.array([[2.0, 0.1], [0.1, 3.0], [1.0, -0.1]])
    # nearest: a, b, a against truth a, a, a
    assert nearest_neighbour_accuracy(train, ["a", "b"], test, ["a", "a", "a"]) == pytest.approx(2 / 3)
    train_labels, test_labels = ["a", "a", "b", "c"], ["a", "b", "b", "d"]
    # p_train: a 1/2, b 1/4, c 1/4; p_test: a 1/4, b 1/2, d 1/4 -> 1/8 + 1/8
    assert prior_chance(train_labels, test_labels) == pytest.approx(0.25)
    assert majority_chance(train_labels, test_labels) == pytest.approx(0.25)  # always "a"


# --- the command on a synthetic root ---------------------------------------------------------------

TASK = "90001"
N_STEPS = 6
CLIP_S = 4.0  # write_synthetic_root's clip length


def _fake_minilm(texts: list[str]) -> np.ndarray:
    """One-hot of the step sentence: 1-NN over these finds the same sentence."""
    order = step_texts(N_STEPS)
    return np.eye(N_STEPS, dtype=np.float32)[[order.index(t) for t in texts]]


def _demo_like_root(path: Path) -> tuple[DataRoot, dict[str, list[tuple[str, str]]]]:
    """Synthetic clips + features + clip_pairs + cached text; (text, label) of each clip by video, in
    clip_pairs order (clip 2 of each video is left unannotated: "no step")."""
    root = write_synthetic_root(path, n_videos=16, n_steps=N_STEPS, clips_per_video=6, shards=2, dim=32)
    labels: dict[str, list[str]] = {}
    for shard in (0, 1):
        build_pairs_shard(root, shard)
        cache_text_shard(root, shard, _fake_minilm)
        table = read_shard(root, "clip_pairs", shard)
        assert table is not None
        for video, text in zip(
            table.column("video_id").to_pylist(), table.column("text").to_pylist(), strict=True
        ):
            labels.setdefault(video, []).append(text)
    order = step_texts(N_STEPS)
    release = path / "benchmarks" / "demo" / "crosstask"
    (release / "annotations").mkdir(parents=True)
    (release / "tasks_primary.txt").write_text(
        f"{TASK}\nSynthetic task\ndemo://t\n{N_STEPS}\n{','.join(order)}\n\n"
    )
    videos = sorted(labels)
    left_out = videos.pop()  # listed but without an annotation file
    (release / "videos.csv").write_text("".join(f"{TASK},{v},demo://{v}\n" for v in videos + [left_out]))
    out: dict[str, list[tuple[str, str]]] = {}
    for video in videos:
        steps = [order.index(t) + 1 for t in labels[video]]
        rows = [f"{s},{i * CLIP_S:.3f},{(i + 1) * CLIP_S:.3f}\n" for i, s in enumerate(steps) if i != 2]
        (release / "annotations" / f"{TASK}_{video}.csv").write_text("".join(rows))
        out[video] = [
            (t, step_label(TASK, None if i == 2 else s))
            for i, (t, s) in enumerate(zip(labels[video], steps, strict=True))
        ]
    return root, out


def test_command_prints_the_pure_functions_numbers(tmp_path: Path) -> None:
    root, clips = _demo_like_root(tmp_path)
    held_rows = [row for v, rows in clips.items() if is_heldout(v, 0.4) for row in rows]
    train_rows = [row for v, rows in clips.items() if not is_heldout(v, 0.4) for row in rows]
    held, train = [lab for _, lab in held_rows], [lab for _, lab in train_rows]
    assert held and train
    # The fake MiniLM is one-hot per sentence: a held-out line's nearest training line is the first
    # with the same sentence (cosine 1), else the first training line (all cosines 0).
    nearest = [next((lab for t, lab in train_rows if t == text), train[0]) for text, _ in held_rows]
    text_accuracy = float(np.mean([p == lab for p, lab in zip(nearest, held, strict=True)]))
    report = measure(root, 0.4, 3)
    out = CliRunner().invoke(
        app,
        ["bench", "retrieval-ceiling", "--data-root", str(tmp_path), "--heldout-fraction", "0.4", "--k", "3"],
    )
    assert out.exit_code == 0, out.stdout + out.stderr
    text = out.stdout
    assert f"clips: {len(train)} training" in text and f"{len(held)} held-out" in text
    assert "left out: 6 clips of 1 videos without step annotations" in text
    assert f"R@3: {tie_ceiling(held, 3):.3f}" in text
    for name, probe in report.video.items():
        assert f"{name}: {probe.accuracy:.3f} (lambda {probe.lam:g})" in text
    assert report.text == pytest.approx(text_accuracy)
    assert f"cached text_embeddings): {text_accuracy:.3f}" in text
    assert f"{prior_chance(train, held):.3f} guessing" in text
    assert f"{majority_chance(train, held):.3f} always" in text


def test_command_without_demo_benchmark_files_is_one_line_exit_2(tmp_path: Path) -> None:
    write_synthetic_root(tmp_path, n_videos=2, n_steps=2, clips_per_video=2, shards=1, dim=8)
    out = CliRunner().invoke(app, ["bench", "retrieval-ceiling", "--data-root", str(tmp_path)])
    assert out.exit_code == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    missing = tmp_path / "benchmarks" / "demo" / "crosstask" / "tasks_primary.txt"
    assert f"{missing}: no such file" in lines[0]
