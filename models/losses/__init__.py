"""Training losses over a (texts x videos) similarity matrix; each lives in its own small module."""

from __future__ import annotations

from torch import nn

from models.losses.infonce import SymmetricInfoNCE
from models.losses.max_margin import MaxMarginRankingLoss, negative_weights
from models.losses.milnce import MILNCELoss, neighbour_mask

__all__ = [
    "MILNCELoss",
    "MaxMarginRankingLoss",
    "SymmetricInfoNCE",
    "build_loss",
    "negative_weights",
    "neighbour_mask",
]


def build_loss(
    name: str,
    margin: float = 0.1,
    negative_weighting: bool = True,
    temperature: float = 0.07,
    neighbours: int = 1,
) -> nn.Module:
    """A loss by name: "max_margin" (HowTo100M), "milnce" or "infonce"."""
    if name == "max_margin":
        return MaxMarginRankingLoss(margin=margin, negative_weighting=negative_weighting)
    if name == "milnce":
        return MILNCELoss(temperature=temperature, neighbours=neighbours)
    if name == "infonce":
        return SymmetricInfoNCE(temperature=temperature)
    raise ValueError(f"unknown loss {name!r}; expected max_margin, milnce or infonce")
