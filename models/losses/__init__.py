"""Training losses over a (texts x videos) similarity matrix; each lives in its own small module."""

from __future__ import annotations

from torch import nn

from models.losses.infonce import SymmetricInfoNCE
from models.losses.max_margin import MaxMarginRankingLoss, negative_weights
from models.losses.max_margin_reference import ReferenceMaxMarginLoss, reference_mask
from models.losses.milnce import MILNCELoss
from models.losses.milnce_inbatch import InBatchMILNCELoss, neighbour_mask
from models.losses.tvts import TVTSLoss

__all__ = [
    "LOSSES",
    "InBatchMILNCELoss",
    "MILNCELoss",
    "MaxMarginRankingLoss",
    "ReferenceMaxMarginLoss",
    "SymmetricInfoNCE",
    "TVTSLoss",
    "build_loss",
    "negative_weights",
    "neighbour_mask",
    "reference_mask",
]

LOSSES = ("max_margin", "max_margin_reference", "milnce", "milnce_inbatch", "infonce", "tvts")


def build_loss(
    name: str,
    margin: float = 0.1,
    negative_weighting: bool = True,
    temperature: float = 0.07,
    neighbours: int = 1,
    sort_weight: float = 2.0,
    fused: bool = False,
) -> nn.Module:
    """A loss by name: "max_margin" (HowTo100M, any group sizes), "max_margin_reference" (its exact
    weighting), "milnce" (published, bags), "milnce_inbatch", "infonce" or "tvts". `fused`: max_margin
    in its fused form (MaxMarginRankingLoss), for bf16 steps."""
    if name == "max_margin":
        return MaxMarginRankingLoss(margin=margin, negative_weighting=negative_weighting, fused=fused)
    if name == "max_margin_reference":
        return ReferenceMaxMarginLoss(margin=margin, negative_weighting=negative_weighting)
    if name == "milnce":
        return MILNCELoss(temperature=temperature)
    if name == "milnce_inbatch":
        return InBatchMILNCELoss(temperature=temperature, neighbours=neighbours)
    if name == "infonce":
        return SymmetricInfoNCE(temperature=temperature)
    if name == "tvts":
        return TVTSLoss(temperature=temperature, sort_weight=sort_weight)
    raise ValueError(f"unknown loss {name!r}; expected one of {', '.join(LOSSES)}")
