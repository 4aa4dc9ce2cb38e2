"""In-batch MIL-NCE (`milnce_inbatch`): over caption-line pairs, a clip's positives are its own and its
neighbouring captions already in the batch (the published sampling is `milnce.py`)."""

from __future__ import annotations

import torch
from torch import nn


def neighbour_mask(groups: torch.Tensor, order: torch.Tensor, neighbours: int = 1) -> torch.Tensor:
    """(videos x texts) bool: text j is a positive of clip i if same video and |order_i - order_j| <= k."""
    same = groups.view(-1, 1) == groups.view(1, -1)
    near = (order.view(-1, 1) - order.view(1, -1)).abs() <= neighbours
    return same & near


class InBatchMILNCELoss(nn.Module):
    """-mean_i log( sum_{j in P_i} e^{x_ij} / (sum_j e^{x_ij} + sum_{k != i, j in P_i} e^{x_kj}) ).

    x = (video x text) similarity / temperature. The denominator holds every text against clip i plus
    every other clip against clip i's positive texts, as in the reference's two-way denominator
    (which also counts the positives twice; we count each pair once).
    """

    def __init__(self, temperature: float = 0.07, neighbours: int = 1) -> None:
        super().__init__()
        self.temperature = temperature
        self.neighbours = neighbours

    def forward(
        self, sim: torch.Tensor, groups: torch.Tensor, order: torch.Tensor | None = None
    ) -> torch.Tensor:
        if order is None:
            order = torch.arange(sim.shape[0], device=sim.device)
        x = sim.t() / self.temperature  # rows are clips (videos), columns are captions
        pos = neighbour_mask(groups, order, self.neighbours)
        neg_inf = torch.finfo(x.dtype).min
        numerator = torch.logsumexp(x.masked_fill(~pos, neg_inf), dim=1)
        # For each positive pair (i, j): every other clip k != i against caption j. Positives are few per
        # clip, so this is (pairs x N), not the reference's (N x N x bag) tensor.
        rows, cols = pos.nonzero(as_tuple=True)
        others = x[:, cols].t()  # (pairs, N): entry k is x[k, j]
        others = others.masked_fill(
            torch.arange(x.shape[0], device=x.device).view(1, -1) == rows.view(-1, 1), neg_inf
        )
        cross = torch.full_like(x, neg_inf).index_put((rows, cols), torch.logsumexp(others, dim=1))
        cross_lse = torch.logsumexp(cross, dim=1)
        denominator = torch.logaddexp(torch.logsumexp(x, dim=1), cross_lse)
        return (denominator - numerator).mean()
