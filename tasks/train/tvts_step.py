"""TVTS training steps and its sorting probe: the video tower's per-second tokens sort the transcripts."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import nn

from models.embedding import JointEmbedding
from models.train_loop import Batch, EpochStats, batch_inputs, gemm_layout, train_epoch, update
from tasks.train.batches import pad_sequences, window_tokens
from tasks.train.samplers import SORT_WINDOW
from tasks.train.videos import VideoLines


def sort_logits(
    model: JointEmbedding, tokens: torch.Tensor, real: torch.Tensor, transcripts: torch.Tensor
) -> torch.Tensor:
    """(W, C, C) logits: window tokens through the video tower one by one, then the sorting head with
    the transcripts' joint-space vectors, detached (sorting trains the video side only)."""
    w, t, dim = tokens.shape
    video = model.video(tokens.reshape(w * t, dim)).reshape(w, t, -1)
    return model.heads["sorter"](video, real, transcripts.detach())


def tvts_step(
    model: JointEmbedding,
    loss_fn: nn.Module,
    batch: Batch,
    device: torch.device,
    generator: torch.Generator,
) -> torch.Tensor:
    """The loss of one window batch: contrastive over its clips, sorting over its windows.

    Each window's transcripts are fed in a random order; the target of slot k is the chronological
    index of the transcript put there.
    """
    tokens, real = batch.tokens.to(device), batch.real.to(device)  # type: ignore[attr-defined]
    video, text = batch_inputs(batch, device)
    v, t = model.video(video), model.text(text)
    windows = tokens.shape[0]
    perm = torch.argsort(torch.rand(windows, SORT_WINDOW, generator=generator), dim=1).to(device)
    transcripts = t.reshape(windows, SORT_WINDOW, -1)
    shuffled = transcripts.gather(1, perm.unsqueeze(-1).expand(-1, -1, transcripts.shape[-1]))
    logits = sort_logits(model, tokens, real, shuffled)
    loss: torch.Tensor = loss_fn(JointEmbedding.similarity(t, v), logits, perm)
    return loss


def tvts_epoch(
    model: nn.Module,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[Batch],
    device: torch.device,
    seed: int,
    clip_norm: float | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    precision: str = "fp32",
) -> EpochStats:
    """One pass of TVTS steps (single process: the sorting path bypasses a DDP wrapper's forward);
    `clip_norm`, a per-step `scheduler` and the GEMMs' context for `precision` as in train_epoch."""
    net: JointEmbedding = getattr(model, "module", model)
    generator = torch.Generator().manual_seed(seed)

    def step(batch: Batch) -> torch.Tensor:
        net.train()
        with gemm_layout(device, precision):  # forward and backward, as train_step
            loss = tvts_step(net, loss_fn, batch, device, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
        update(optimizer, clip_norm)
        return loss.detach()  # read one step late by train_epoch

    return train_epoch(model, loss_fn, optimizer, batches, device, step=step, scheduler=scheduler)


@torch.no_grad()
def sort_accuracy(
    model: JointEmbedding,
    videos: list[VideoLines],
    encode: Callable[[list[str]], torch.Tensor],
    seed: int = 0,
    windows_per_video: int = 8,
    shuffle_time: bool = False,
    same_text: bool = False,
) -> float:
    """Share of transcripts put at their chronological index, on windows of the given videos.

    Controls: `shuffle_time` permutes each window's video tokens in time (positions then say nothing);
    `same_text` gives every transcript of a window the first one's text. Both should give chance (1/4).
    """
    model.eval()
    rng = np.random.default_rng([seed, 41])
    hits = total = 0
    for video in videos:
        n = len(video.starts)
        if n < SORT_WINDOW:
            continue
        for first in rng.integers(0, n - SORT_WINDOW + 1, windows_per_video):
            lines = list(range(int(first), int(first) + SORT_WINDOW))
            a, b = int(video.starts[lines[0]] // 1000), int(-(-video.ends[lines[-1]] // 1000))
            seq = window_tokens(video, a, min(b, video.seconds))
            if shuffle_time:
                seq = seq[rng.permutation(len(seq))]
            tokens, real = pad_sequences([seq], len(seq))
            texts = [video.texts[lines[0]]] * SORT_WINDOW if same_text else [video.texts[i] for i in lines]
            perm = rng.permutation(SORT_WINDOW)
            t = model.text(encode([texts[i] for i in perm]))
            logits = sort_logits(model, torch.from_numpy(tokens), torch.from_numpy(real), t.unsqueeze(0))
            hits += int((logits[0].argmax(-1).numpy() == perm).sum())
            total += SORT_WINDOW
    return hits / max(total, 1)
