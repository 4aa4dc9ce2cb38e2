"""Ceilings of held-out text->video retrieval from step labels: pure functions, no I/O.

A caption line is labelled with the annotated step its clip overlaps most. Clips of one step are
what a model that knows each query's step, and nothing finer, cannot tell apart: that bounds R@k.
How well the step can be read from the video alone (a linear probe) and from the text alone
(nearest neighbour) says which side limits a joint embedding. `tasks/bench/retrieval_ceiling_root.py`
reads a data root into these functions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NO_STEP = "no step"
# Ridge penalties tried; for standardised 4096-d vectors the Gram matrix's diagonal is ~4096, so the
# grid spans "almost no penalty" to "almost only the class prior".
DEFAULT_LAMBDAS: tuple[float, ...] = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6)


def step_label(task_id: str, step: int | None) -> str:
    """The label of a clip: its task and 1-based step, or the task's "no step"."""
    return f"{task_id}/{NO_STEP}" if step is None else f"{task_id}/step {step}"


def label_clip(
    task_id: str, segments: Sequence[tuple[int, float, float]], start_s: float, end_s: float
) -> str:
    """The step whose annotated segment overlaps the clip [start_s, end_s] longest.

    overlap(segment) = max(0, min(end_s, seg_end) - max(start_s, seg_start)); the largest positive
    overlap wins (the first segment listed on a tie); no positive overlap gives the task's "no step".
    `segments` are CrossTask annotation rows (step, start_s, end_s).
    """
    best_step, best = None, 0.0
    for step, seg_start, seg_end in segments:
        overlap = min(end_s, seg_end) - max(start_s, seg_start)
        if overlap > best:
            best_step, best = step, overlap
    return step_label(task_id, best_step)


def tie_ceiling(labels: Sequence[str], k: int) -> float:
    """Mean over clips of min(1, k / n_label), n_label the number of clips sharing the clip's label.

    R@k of a retriever that ranks the query's step's clips first but in random order among themselves
    (the clip itself is one of them): it is in the top k with probability min(1, k / n_label).
    """
    if not labels:
        return 0.0
    counts = Counter(labels)
    return float(np.mean([min(1.0, k / counts[label]) for label in labels]))


@dataclass(frozen=True)
class RidgeClassifier:
    """Ridge regression on one-hot labels over standardised inputs; predicts the largest score."""

    mean: np.ndarray  # (d,) of the training inputs
    scale: np.ndarray  # (d,) their standard deviation (floored)
    weights: np.ndarray  # (d, classes)
    bias: np.ndarray  # (classes,) the training labels' shares
    classes: tuple[str, ...]

    def predict(self, x: np.ndarray) -> list[str]:
        scores = ((x - self.mean) / self.scale) @ self.weights + self.bias
        return [self.classes[i] for i in np.argmax(scores, axis=1)]


def fit_ridge(x: np.ndarray, labels: Sequence[str], lam: float) -> RidgeClassifier:
    """Closed-form ridge: Z = (x - mean) / std, Y one-hot, Yc = Y - mean(Y),
    W = (Z^T Z + lam I)^-1 Z^T Yc, computed as Z^T (Z Z^T + lam I)^-1 Yc when d > n (same W).

    The bias mean(Y) is not penalised (Z's columns have mean 0, so it is the least-squares intercept).
    """
    x = np.asarray(x, dtype=np.float64)
    classes = tuple(sorted(set(labels)))
    index = {c: i for i, c in enumerate(classes)}
    y = np.zeros((len(labels), len(classes)))
    y[np.arange(len(labels)), [index[label] for label in labels]] = 1.0
    mean, scale = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-6)
    z = (x - mean) / scale
    bias = y.mean(axis=0)
    yc = y - bias
    n, d = z.shape
    if d > n:
        weights = z.T @ np.linalg.solve(z @ z.T + lam * np.eye(n), yc)
    else:
        weights = np.linalg.solve(z.T @ z + lam * np.eye(d), z.T @ yc)
    return RidgeClassifier(mean, scale, weights, bias, classes)


def accuracy(predicted: Sequence[str], truth: Sequence[str]) -> float:
    """Share of positions where the two agree (0 for none)."""
    if not truth:
        return 0.0
    return float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)]))


def grouped_folds(groups: Sequence[str], n_folds: int, seed: int = 0) -> np.ndarray:
    """Fold number of each row; all rows of a group (a video) share a fold, groups dealt at random."""
    unique = sorted(set(groups))
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of = {unique[g]: rank % n_folds for rank, g in enumerate(order)}
    return np.array([fold_of[g] for g in groups], dtype=np.int64)


@dataclass(frozen=True)
class ProbeResult:
    """A ridge probe's held-out accuracy and the penalty chosen on the training clips alone."""

    accuracy: float
    lam: float
    tuning: dict[float, float]  # penalty -> cross-validated accuracy on the training clips


def select_lambda(
    x: np.ndarray,
    labels: Sequence[str],
    groups: Sequence[str],
    lambdas: Sequence[float] = DEFAULT_LAMBDAS,
    n_folds: int = 4,
    seed: int = 0,
) -> tuple[float, dict[float, float]]:
    """The penalty with the best grouped n-fold accuracy (each fold's videos predicted by a probe fit
    on the other folds' videos); ties go to the larger penalty. Only the given (training) rows are used;
    with a single video there is nothing to validate on and the largest penalty is returned."""
    folds = grouped_folds(groups, min(n_folds, len(set(groups))), seed)
    tuning: dict[float, float] = {}
    for lam in lambdas:
        correct = 0
        for fold in np.unique(folds):
            fit, held = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
            if len(fit) == 0:
                continue
            probe = fit_ridge(x[fit], [labels[i] for i in fit.tolist()], lam)
            predicted = probe.predict(x[held])
            correct += sum(p == labels[i] for p, i in zip(predicted, held.tolist(), strict=True))
        tuning[lam] = correct / max(len(labels), 1)
    best = max(tuning.values())
    return max(lam for lam, acc in tuning.items() if acc == best), tuning


def ridge_probe(
    train_x: np.ndarray,
    train_labels: Sequence[str],
    train_groups: Sequence[str],
    test_x: np.ndarray,
    test_labels: Sequence[str],
    lambdas: Sequence[float] = DEFAULT_LAMBDAS,
) -> ProbeResult:
    """Penalty chosen by `select_lambda` on the training rows, then a probe fit on all of them and
    scored on the test rows (a test label never seen in training counts as wrong)."""
    lam, tuning = select_lambda(train_x, train_labels, train_groups, lambdas)
    probe = fit_ridge(train_x, train_labels, lam)
    return ProbeResult(accuracy(probe.predict(test_x), test_labels), lam, tuning)


def nearest_neighbour_accuracy(
    train_x: np.ndarray, train_labels: Sequence[str], test_x: np.ndarray, test_labels: Sequence[str]
) -> float:
    """Each test row takes the label of its most cosine-similar training row (the first on a tie)."""
    if len(test_labels) == 0 or len(train_labels) == 0:
        return 0.0

    def unit(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, dtype=np.float64)
        return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)

    nearest = np.argmax(unit(test_x) @ unit(train_x).T, axis=1)
    return accuracy([train_labels[i] for i in nearest], test_labels)


def prior_chance(train_labels: Sequence[str], test_labels: Sequence[str]) -> float:
    """Expected accuracy of guessing labels at their training frequencies: sum_l p_train(l) p_test(l)."""
    if not train_labels or not test_labels:
        return 0.0
    train, test = Counter(train_labels), Counter(test_labels)
    return sum(train[label] * test[label] for label in test) / (len(train_labels) * len(test_labels))


def majority_chance(train_labels: Sequence[str], test_labels: Sequence[str]) -> float:
    """Accuracy of always answering the most frequent training label (the first in sorted order on a tie)."""
    if not train_labels:
        return 0.0
    counts = Counter(train_labels)
    top = max(sorted(counts), key=lambda label: counts[label])
    return accuracy([top] * len(test_labels), test_labels)
