"""MMV's fine-and-coarse (FAC) embedding (Alayrac et al. 2020) and its losses, plus the "shared" ablation.

FAC graph (after deepmind-research mmv/models/mm_embeddings.py, read, not copied):
    z_v,va = vis_embd(video)                       fine space S_va (linear)
    z_v,vat = vid2txt(ReLU(z_v,va))                coarse space S_vat; vid2txt = Linear, BN, ReLU, Linear, BN
    z_a,va = audio_embd(audio)                     fine space
    z_a,vat = vid2txt(ReLU(z_a,va))                the SAME MLP: audio reaches text only through it
    z_t,vat = txt_embd(text)                       coarse space
Shared graph: video, audio and text each go by one linear map into one space used by both losses.

Loss per clip i, with a_i / t_i = 1 when the clip has audio / text:
    l_va,i = NCE between z_v,va and z_a,va (in-batch negatives among clips with audio, both directions, /2)
    l_vt,i = MIL-NCE between z_v,vat and the clip's bag of K captions (negatives: every other clip's bag)
    l_i = (lam_va a_i l_va,i + lam_vt t_i l_vt,i) * (lam_va + lam_vt) / (lam_va a_i + lam_vt t_i)
    L = mean of l_i over clips with a_i + t_i > 0
so a missing modality drops its term and the clip's other term is scaled up to the full weight.
All similarities are cosines divided by tau.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Graph = Literal["fac", "shared"]


@dataclass(frozen=True)
class FACLossWeights:
    va: float = 1.0
    vt: float = 1.0
    tau: float = 0.07


class MMEmbedding(nn.Module):
    """Video, audio and text heads over precomputed features, as the FAC or the shared graph."""

    def __init__(
        self,
        video_dim: int,
        audio_dim: int,
        text_dim: int,
        d_fine: int = 256,
        d_coarse: int = 128,
        graph: Graph = "fac",
    ) -> None:
        super().__init__()
        self.graph = graph
        fine = d_fine if graph == "fac" else d_coarse
        self.vis_embd = nn.Linear(video_dim, fine)
        self.audio_embd = nn.Linear(audio_dim, fine)
        self.txt_embd = nn.Linear(text_dim, d_coarse)
        self.vid2txt = (
            nn.Sequential(
                nn.Linear(d_fine, d_coarse),
                nn.BatchNorm1d(d_coarse),
                nn.ReLU(),
                nn.Linear(d_coarse, d_coarse),
                nn.BatchNorm1d(d_coarse),
            )
            if graph == "fac"
            else None
        )

    def video_fine(self, video: torch.Tensor) -> torch.Tensor:
        return self.vis_embd(video)

    def audio_fine(self, audio: torch.Tensor) -> torch.Tensor:
        return self.audio_embd(audio)

    def to_coarse(self, fine: torch.Tensor) -> torch.Tensor:
        """Fine -> coarse: the vid2txt MLP on ReLU(fine) in FAC; the identity in the shared space."""
        return self.vid2txt(F.relu(fine)) if self.vid2txt is not None else fine

    def video_coarse(self, video: torch.Tensor) -> torch.Tensor:
        return self.to_coarse(self.video_fine(video))

    def audio_coarse(self, audio: torch.Tensor) -> torch.Tensor:
        return self.to_coarse(self.audio_fine(audio))

    def text_coarse(self, text: torch.Tensor) -> torch.Tensor:
        return self.txt_embd(text)


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).transpose(-1, -2)


def nce_per_clip(video: torch.Tensor, audio: torch.Tensor, has: torch.Tensor, tau: float) -> torch.Tensor:
    """(B,) symmetric InfoNCE of each clip with audio (0 elsewhere); only clips with audio are negatives.
    Computed on the clips with audio only, so no row of -inf ever reaches a logsumexp (NaN gradients)."""
    out = video.new_zeros(video.shape[0])
    idx = has.nonzero().flatten()
    if idx.numel() == 0:
        return out
    sim = _cos(video[idx], audio[idx]) / tau
    diag = sim.diagonal()
    v2a = torch.logsumexp(sim, dim=1) - diag
    a2v = torch.logsumexp(sim, dim=0) - diag
    return out.index_put((idx,), (v2a + a2v) / 2)


def milnce_per_clip(
    video: torch.Tensor, bags: torch.Tensor, bag_mask: torch.Tensor, tau: float
) -> torch.Tensor:
    """(B,) MIL-NCE: video (B, d), bags (B, K, d), bag_mask (B, K) marks real captions.

    x[i,j,k] = cos(v_i, t_jk) / tau over clips with captions; num_i = logsumexp_k x[i,i,k];
    den_i = logsumexp over x[i,:,:] and x[:,i,:] (positives twice, as the reference); l_i = den_i - num_i;
    0 for a clip without captions (computed on the others only: no all -inf logsumexp).
    """
    out = video.new_zeros(video.shape[0])
    idx = bag_mask.any(dim=1).nonzero().flatten()
    if idx.numel() == 0:
        return out
    v, t, m = video[idx], bags[idx], bag_mask[idx]
    b, k, d = t.shape
    x = (_cos(v, t.reshape(b * k, d)) / tau).view(b, b, k)
    x = x.masked_fill(~m.view(1, b, k), float("-inf"))
    num = torch.logsumexp(x[torch.arange(b), torch.arange(b)], dim=1)
    den = torch.logsumexp(torch.cat([x.reshape(b, b * k), x.transpose(0, 1).reshape(b, b * k)], dim=1), dim=1)
    return out.index_put((idx,), den - num)


def fac_loss(
    model: MMEmbedding,
    video: torch.Tensor,
    audio: torch.Tensor,
    has_audio: torch.Tensor,
    bags: torch.Tensor,
    bag_mask: torch.Tensor,
    weights: FACLossWeights = FACLossWeights(),
) -> torch.Tensor:
    """The re-weighted per-clip sum of the module docstring, averaged over clips with any term."""
    fine_v = model.video_fine(video)
    l_va = nce_per_clip(fine_v, model.audio_fine(audio), has_audio, weights.tau)
    has_text = bag_mask.any(dim=1)
    b, k, _ = bags.shape
    text = model.text_coarse(bags.reshape(b * k, -1)).view(b, k, -1)
    l_vt = milnce_per_clip(model.to_coarse(fine_v), text, bag_mask, weights.tau)
    return combine_terms(l_va, has_audio, l_vt, has_text, weights)


def combine_terms(
    l_va: torch.Tensor, has_audio: torch.Tensor, l_vt: torch.Tensor, has_text: torch.Tensor, w: FACLossWeights
) -> torch.Tensor:
    a, t = has_audio.float(), has_text.float()
    present = w.va * a + w.vt * t
    keep = present > 0
    if not keep.any():
        return l_va.sum() * 0.0  # keeps the graph; nothing to learn from this batch
    per_clip = (w.va * a * l_va + w.vt * t * l_vt) * (w.va + w.vt) / present.clamp_min(1e-12)
    return per_clip[keep].mean()
