"""Retrieval metrics: R@1/5/10 and median rank, ties counted against the model."""

from __future__ import annotations

import torch

from models.embedding import JointEmbedding


def ranks_from_similarity(sim: torch.Tensor) -> torch.Tensor:
    """1-based rank of the true candidate (the diagonal) for each query row.

    rank = 1 + number of other candidates scoring >= the true one, so a tie is a loss: a model that
    scores everything equal gets rank N, never rank 1.
    """
    true = sim.diagonal().view(-1, 1)
    beats = sim >= true
    beats.fill_diagonal_(False)
    return beats.sum(dim=1) + 1


def retrieval_metrics(sim: torch.Tensor) -> dict[str, float]:
    """R@1, R@5, R@10 (fractions) and MedR for queries (rows) against candidates (columns)."""
    ranks = ranks_from_similarity(sim).float()
    return {
        "R@1": float((ranks <= 1).float().mean()),
        "R@5": float((ranks <= 5).float().mean()),
        "R@10": float((ranks <= 10).float().mean()),
        "MedR": float(ranks.quantile(0.5)),  # midpoint of the two middle ranks, as numpy
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
    metrics = retrieval_metrics(JointEmbedding.similarity(t, v))
    metrics["candidates"] = float(video.shape[0])
    return metrics
