"""Train MMV's FAC (or the shared ablation) on video/audio/text clip arrays; evaluate video<->audio retrieval
and zero-shot audio->text retrieval (audio never meets text in training: it reaches the coarse space only
through the video's MLP)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import torch

from models.evaluate import retrieval_metrics
from models.fac import FACLossWeights, Graph, MMEmbedding, fac_loss


@dataclass
class MMData:
    """Clips with their inputs: video (N, Dv), audio (N, Da) + has_audio, caption bags (N, K, Dt) + mask;
    `caption` is each clip's own caption (the zero-shot audio->text candidates are the distinct ones)."""

    video: np.ndarray
    audio: np.ndarray
    has_audio: np.ndarray
    bags: np.ndarray
    bag_mask: np.ndarray
    caption: list[str]

    def take(self, rows: np.ndarray) -> MMData:
        return MMData(
            self.video[rows], self.audio[rows], self.has_audio[rows], self.bags[rows], self.bag_mask[rows],
            [self.caption[i] for i in rows],
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.video)


@dataclass(frozen=True)
class FACTrainConfig:
    graph: Graph = "fac"
    d_fine: int = 256
    d_coarse: int = 128
    epochs: int = 20
    batch: int = 64
    lr: float = 1e-3
    weights: FACLossWeights = FACLossWeights()
    seed: int = 0
    # The control: audio rows permuted across training clips, so nothing ties a clip's audio to it.
    shuffle_audio: bool = False


@dataclass
class Standardiser:
    """Per-dimension z-scores with the training clips' mean and std (random-CNN features differ little)."""

    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]

    @classmethod
    def fit(cls, data: MMData) -> Standardiser:
        parts = {"video": data.video, "audio": data.audio[data.has_audio], "text": data.bags[data.bag_mask]}
        mean = {k: v.mean(0) if len(v) else np.zeros(v.shape[1:], np.float32) for k, v in parts.items()}
        std = {k: v.std(0) + 1e-6 if len(v) else np.ones(v.shape[1:], np.float32) for k, v in parts.items()}
        return cls(mean, std)

    def apply(self, data: MMData) -> MMData:
        z = {k: None for k in ("video", "audio", "text")}
        z["video"] = (data.video - self.mean["video"]) / self.std["video"]
        z["audio"] = (data.audio - self.mean["audio"]) / self.std["audio"]
        z["text"] = (data.bags - self.mean["text"]) / self.std["text"]
        return replace(data, video=z["video"].astype(np.float32), audio=z["audio"].astype(np.float32),
                       bags=z["text"].astype(np.float32))  # fmt: skip


@dataclass
class TrainedFAC:
    model: MMEmbedding
    standardiser: Standardiser
    losses: list[float]


def train_fac(data: MMData, cfg: FACTrainConfig) -> TrainedFAC:
    """Adam over shuffled mini-batches; deterministic for a seed on CPU."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    if cfg.shuffle_audio:
        perm = rng.permutation(len(data))
        data = replace(data, audio=data.audio[perm], has_audio=data.has_audio[perm])
    std = Standardiser.fit(data)
    z = std.apply(data)
    model = MMEmbedding(
        z.video.shape[1], z.audio.shape[1], z.bags.shape[2], cfg.d_fine, cfg.d_coarse, cfg.graph
    )
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    tensors = [
        torch.from_numpy(np.ascontiguousarray(x)) for x in (z.video, z.audio, z.has_audio, z.bags, z.bag_mask)
    ]
    losses = []
    for _ in range(cfg.epochs):
        model.train()
        order = rng.permutation(len(z))
        total = 0.0
        for start in range(0, len(order) - 1, cfg.batch):
            rows = torch.from_numpy(order[start : start + cfg.batch])
            if len(rows) < 2:  # BatchNorm needs two
                continue
            v, a, ha, b, bm = (t[rows] for t in tensors)
            loss = fac_loss(model, v, a, ha, b, bm, cfg.weights)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(rows)
        losses.append(total / len(z))
    model.eval()
    return TrainedFAC(model, std, losses)


RetrievalMode = Literal["video_to_audio", "audio_to_video"]


@torch.no_grad()
def evaluate_fac(trained: TrainedFAC, data: MMData) -> dict[str, float]:
    """video->audio and audio->video among held-out clips with audio (fine space; the one space when
    shared), and zero-shot audio->text among the distinct held-out captions, with its chance R@5."""
    z = trained.standardiser.apply(data)
    model = trained.model
    keep = np.flatnonzero(z.has_audio)
    v = torch.from_numpy(z.video[keep])
    a = torch.from_numpy(z.audio[keep])
    fine_v = torch.nn.functional.normalize(model.video_fine(v), dim=1)
    fine_a = torch.nn.functional.normalize(model.audio_fine(a), dim=1)
    out: dict[str, float] = {"clips": float(len(keep))}
    for name, sim in (("v2a", fine_v @ fine_a.t()), ("a2v", fine_a @ fine_v.t())):
        m = retrieval_metrics(sim)
        out.update({f"{name}_R@1": m["R@1"], f"{name}_R@5": m["R@5"], f"{name}_MedR": m["MedR"]})
    # Zero-shot audio -> text: audio's coarse embedding against each distinct caption's text embedding.
    with_text = [i for i in keep if z.bag_mask[i, 0]]
    captions = sorted({data.caption[i] for i in with_text})
    first = {c: next(i for i in with_text if data.caption[i] == c) for c in captions}
    text = torch.from_numpy(np.stack([z.bags[first[c], 0] for c in captions]))
    t = torch.nn.functional.normalize(model.text_coarse(text), dim=1)
    coarse_a = torch.nn.functional.normalize(model.audio_coarse(torch.from_numpy(z.audio[with_text])), dim=1)
    sim = coarse_a @ t.t()
    target = torch.tensor([captions.index(data.caption[i]) for i in with_text])
    true = sim[torch.arange(len(target)), target].view(-1, 1)
    ranks = (sim >= true).sum(dim=1)  # ties against the model (the true one counts itself once)
    out["a2t_R@1"] = float((ranks <= 1).float().mean())
    out["a2t_R@5"] = float((ranks <= 5).float().mean())
    out["a2t_candidates"] = float(len(captions))
    out["a2t_chance_R@5"] = min(5, len(captions)) / max(1, len(captions))
    out["v2a_chance_R@5"] = min(5, len(keep)) / max(1, len(keep))
    return out
