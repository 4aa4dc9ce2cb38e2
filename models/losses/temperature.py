"""The base of the losses whose logits are similarities divided by a fixed temperature."""

from __future__ import annotations

from torch import nn


class TemperatureLoss(nn.Module):
    """A loss over a (texts x videos) similarity matrix of L2-normalised embeddings, scaled by 1/temperature
    (0.07: CLIP's and VideoCLIP's value; MIL-NCE's reference has raw dot products, see milnce.py)."""

    def __init__(self, temperature: float = 0.07) -> None:
        super().__init__()
        self.temperature = temperature
