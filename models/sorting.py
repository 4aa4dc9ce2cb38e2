"""TVTS's transcript-sorting head: which of a window's transcripts was said first, second, ... ?"""

from __future__ import annotations

import torch
from torch import nn


class TranscriptSorter(nn.Module):
    """Logits (W, C, C) of each transcript's chronological index in its window.

    Input: the window's per-second video tokens (W, T, d) with a (W, T) mask of real tokens, plus its C
    transcript vectors (W, C, d). Video tokens get a type embedding and a position; transcripts get
    the other type and **no** position, so the transformer (permutation-equivariant over them) can only
    find their order by matching them to moments of the video.
    """

    def __init__(
        self,
        d_in: int,
        d_model: int = 128,
        heads: int = 4,
        layers: int = 2,
        classes: int = 4,
        max_tokens: int = 64,
    ) -> None:
        super().__init__()
        # Both inputs are joint-space rows, so they share one projection; a LayerNorm puts their
        # entries (~1/sqrt(d) each) on the scale of the type and position embeddings.
        self.project = nn.Sequential(nn.Linear(d_in, d_model), nn.LayerNorm(d_model))
        self.kind = nn.Embedding(2, d_model)
        self.position = nn.Embedding(max_tokens, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, heads, 4 * d_model, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        with torch.no_grad():  # queries = keys at the start: a transcript first attends to the
            for block in self.encoder.layers:  # moments that look like it (learning starts there)
                weight = block.self_attn.in_proj_weight
                weight[d_model : 2 * d_model] = weight[:d_model]
        self.out = nn.Linear(d_model, classes)

    def forward(self, video: torch.Tensor, real: torch.Tensor, transcripts: torch.Tensor) -> torch.Tensor:
        t = video.shape[1]
        v = self.project(video) + self.kind.weight[0] + self.position.weight[:t]
        s = self.project(transcripts) + self.kind.weight[1]
        pad = torch.cat((~real, torch.zeros(s.shape[:2], dtype=torch.bool, device=s.device)), dim=1)
        h = self.encoder(torch.cat((v, s), dim=1), src_key_padding_mask=pad)
        return self.out(h[:, t:])
