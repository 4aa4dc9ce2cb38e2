"""VideoCLIP's video tower, small: per-second tokens -> transformer -> masked mean -> gated unit."""

from __future__ import annotations

import torch
from torch import nn

from models.embedding import GatedEmbeddingUnit, VideoEncoder

MAX_TOKENS = 64  # position embeddings: VideoCLIP windows are <= 32 s, TVTS windows are cut to 32 too


class TokenVideoEncoder(VideoEncoder):
    """x (N, T, d_in) zero-padded per-second tokens (a real token is never all zero: each model's part
    is L2-normalised), or (N, d_in) pooled vectors read as one token. Tokens are standardised like
    pooled vectors, projected (Linear, GELU, LayerNorm: the first three of MMPT's VideoTokenMLP, which
    ends in a second Linear d_model -> d_model, and whose BERT embeddings add token types and a
    LayerNorm after the positions; neither is here), given positions, mixed by a small transformer,
    mean-pooled over real tokens and mapped by a gated unit. A lite tower, not VideoCLIP's 6-layer BERT.
    """

    def __init__(self, d_in: int, d_out: int, d_model: int = 256, heads: int = 4, layers: int = 2) -> None:
        super().__init__(d_in, d_out)
        self.proj = nn.Sequential(nn.Linear(d_in, d_model), nn.GELU(), nn.LayerNorm(d_model))
        self.position = nn.Embedding(MAX_TOKENS, d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, 2 * d_model, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.unit = GatedEmbeddingUnit(d_model, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        x = x[:, :MAX_TOKENS]
        if x.dtype == torch.float16:  # stored tokens (a training batch): the padding test sums in float32
            x = x.float()
        real = x.abs().sum(-1) > 0  # (N, T)
        real[:, 0] = True  # an all-padding row still attends to something
        h = self.proj(self.standardised(x)) + self.position.weight[: x.shape[1]]
        h = self.encoder(h, src_key_padding_mask=~real)
        w = real.unsqueeze(-1).to(h.dtype)
        return self.unit((h * w).sum(1) / w.sum(1))
