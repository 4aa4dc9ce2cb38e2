"""Retrieval metrics: ranks with ties counted against the model, recall and median rank."""

from __future__ import annotations

import pytest
import torch

from models.evaluate import ranks_from_similarity, retrieval_metrics, tied_queries


def test_ranks_and_recall() -> None:
    sim = torch.tensor([[0.9, 0.1, 0.2], [0.8, 0.5, 0.1], [0.3, 0.4, 0.2]])
    assert ranks_from_similarity(sim).tolist() == [1, 2, 3]
    metrics = retrieval_metrics(sim)
    assert metrics["R@1"] == pytest.approx(1 / 3)
    assert metrics["R@5"] == 1.0
    assert metrics["MedR"] == 2.0


def test_ties_count_against_the_model() -> None:
    sim = torch.zeros(10, 10)
    assert ranks_from_similarity(sim).tolist() == [10] * 10
    metrics = retrieval_metrics(sim)
    assert metrics["R@1"] == 0.0 and metrics["R@5"] == 0.0 and metrics["MedR"] == 10.0


def test_median_of_even_count_is_the_midpoint() -> None:
    sim = torch.tensor(
        [[1.0, 0.0, 0.0, 0.0], [1.0, 0.5, 0.0, 0.0], [1.0, 1.0, 0.2, 0.0], [1.0, 1.0, 1.0, 0.1]]
    )
    assert ranks_from_similarity(sim).tolist() == [1, 2, 3, 4]
    assert retrieval_metrics(sim)["MedR"] == 2.5


def test_optimistic_rule_and_tied_queries_are_reported() -> None:
    sim = torch.tensor([[0.5, 0.5, 0.1], [0.2, 0.9, 0.3], [0.4, 0.4, 0.4]])
    assert ranks_from_similarity(sim).tolist() == [2, 1, 3]
    assert ranks_from_similarity(sim, "optimistic").tolist() == [1, 1, 1]
    assert tied_queries(sim) == 2
    against, optimistic = retrieval_metrics(sim), retrieval_metrics(sim, "optimistic")
    assert against["R@1"] == pytest.approx(1 / 3) and optimistic["R@1"] == 1.0
    assert against["MeanR"] == pytest.approx(2.0) and optimistic["MeanR"] == 1.0


def test_nan_scores_tie_with_everything() -> None:
    """A diverged model (NaN weights, so NaN scores) ranked every true candidate first: NaN >= x is
    False, so nothing beat it, and the run reported R@1 1.000 and MedR 1. NaN is now a tie."""
    sim = torch.full((4, 4), float("nan"))
    assert ranks_from_similarity(sim).tolist() == [4, 4, 4, 4]
    assert retrieval_metrics(sim)["R@1"] == 0.0 and retrieval_metrics(sim)["MedR"] == 4.0
    assert tied_queries(sim) == 4
    # One NaN candidate in an otherwise scored row counts against the query, as a tie does.
    sim = torch.tensor([[0.9, float("nan"), 0.1], [0.2, 0.8, 0.1], [0.0, 0.1, float("nan")]])
    assert ranks_from_similarity(sim).tolist() == [2, 1, 3]
    assert ranks_from_similarity(sim, "optimistic").tolist() == [1, 1, 1]
    assert tied_queries(sim) == 2


def test_queries_that_share_a_candidate_rank_it_among_the_others() -> None:
    # Three queries, two candidates: queries 0 and 1 describe candidate 0, query 2 candidate 1.
    sim = torch.tensor([[0.9, 0.1], [0.2, 0.4], [0.5, 0.5]])
    answers = torch.tensor([0, 0, 1])
    assert ranks_from_similarity(sim, answers=answers).tolist() == [1, 2, 2]
    assert ranks_from_similarity(sim, "optimistic", answers).tolist() == [1, 2, 1]
    assert tied_queries(sim, answers) == 1
    assert retrieval_metrics(sim, answers=answers)["R@1"] == pytest.approx(1 / 3)
