"""Retrieval metrics: R@1/5/10, median and mean rank, ties counted against the model (and reported)."""

from __future__ import annotations

from typing import Literal

import torch

from models.embedding import JointEmbedding

TieRule = Literal["against", "optimistic"]
# "against" is the rule every number of ours uses: a tie with the true candidate is a loss, so a model
# that scores everything equal gets rank N, never rank 1. "optimistic" (rank = 1 + #others strictly
# better) is printed beside it so that a gap between the two shows when ties matter.
TIE_RULES: tuple[TieRule, ...] = ("against", "optimistic")


def ranks_from_similarity(
    sim: torch.Tensor, ties: TieRule = "against", answers: torch.Tensor | None = None
) -> torch.Tensor:
    """1-based rank of the true candidate for each query row: the diagonal, or column `answers[i]` of
    row i (queries that share a candidate, such as MSR-VTT's several sentences of one video).

    ties="against": rank = 1 + number of other candidates scoring >= the true one;
    ties="optimistic": rank = 1 + number of other candidates scoring > the true one.
    A NaN score (a model whose training diverged) ties with every other score: every comparison with
    NaN is False, so `>=` alone ranked a NaN true candidate first, and an all-NaN model scored R@1 1.0.
    """
    rows, cols = _answers(sim, answers)
    true = sim[rows, cols].view(-1, 1)
    beats = (sim >= true) | _unknown(sim, true) if ties == "against" else sim > true
    beats[rows, cols] = False
    return beats.sum(dim=1) + 1


def _answers(sim: torch.Tensor, answers: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, column) of each query's true candidate: the diagonal unless `answers` names the columns."""
    rows = torch.arange(sim.shape[0])
    return rows, rows if answers is None else torch.as_tensor(answers, dtype=torch.long)


def _unknown(sim: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Where a candidate's score or its query's true score is NaN: a tie, whatever the other is."""
    return sim.isnan() | true.isnan()


def tied_queries(sim: torch.Tensor, answers: torch.Tensor | None = None) -> int:
    """Queries whose true candidate (see ranks_from_similarity) ties exactly with at least one other."""
    rows, cols = _answers(sim, answers)
    true = sim[rows, cols].view(-1, 1)
    same = (sim == true) | _unknown(sim, true)
    same[rows, cols] = False
    return int(same.any(dim=1).sum())


def retrieval_metrics(
    sim: torch.Tensor, ties: TieRule = "against", answers: torch.Tensor | None = None
) -> dict[str, float]:
    """R@1, R@5, R@10 (fractions), MedR and MeanR for queries (rows) against candidates (columns); each
    query's answer is the diagonal, or column `answers[i]`."""
    ranks = ranks_from_similarity(sim, ties, answers).float()
    return {
        "R@1": float((ranks <= 1).float().mean()),
        "R@5": float((ranks <= 5).float().mean()),
        "R@10": float((ranks <= 10).float().mean()),
        "MedR": float(ranks.quantile(0.5)),  # midpoint of the two middle ranks, as numpy
        "MeanR": float(ranks.mean()),
    }


@torch.no_grad()
def embed_in_chunks(
    model: JointEmbedding, video: torch.Tensor, text: torch.Tensor, device: torch.device, chunk: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """Embed paired inputs in chunks (eval mode) and return (video, text) embeddings on the CPU."""
    model.eval()
    vs, ts = [], []
    for start in range(0, video.shape[0], chunk):
        v, t = model(video[start : start + chunk].to(device), text[start : start + chunk].to(device))
        vs.append(v.float().cpu())
        ts.append(t.float().cpu())
    return torch.cat(vs), torch.cat(ts)


def evaluate_pairs(
    model: JointEmbedding, video: torch.Tensor, text: torch.Tensor, device: torch.device
) -> dict[str, float]:
    """Text-to-video retrieval over all given held-out pairs (each text's own clip is the answer)."""
    v, t = embed_in_chunks(model, video, text, device)
    sim = JointEmbedding.similarity(t, v)
    metrics = retrieval_metrics(sim)
    metrics["candidates"] = float(video.shape[0])
    metrics["tied"] = float(tied_queries(sim))
    return metrics
