"""Audio encoders over per-second log-mel chunks: a PANNs Cnn14-layout CNN and weight-free log-mel statistics.

Input to both: (batch, frames, mel_bins) dB log-mels (tasks/audio/logmel.py). `Cnn14` keeps the parameter
names of PANNs' Cnn14 (Kong et al. 2020; `Cnn14_16k_mAP=0.438.pth`, 16 kHz, 64 mel bins), so that
checkpoint's `model` state_dict loads as is at width 64; its STFT/log-mel buffers are not used (we compute
the same front end in numpy) and its AudioSet classifier is dropped. The embedding is fc1's 2048-d output.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

CNN14_WIDTH = 64  # the published model; smaller widths only for random-weight runs on small CPUs


class ConvBlock(nn.Module):
    """Two 3x3 conv + BN + ReLU, then 2x2 average pooling (1x1 in the last block), as in PANNs."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor, pool: tuple[int, int]) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, pool) if pool != (1, 1) else x


class Cnn14(nn.Module):
    """Six conv blocks (w, 2w, ... 32w channels), mean over frequency, max + mean over time, fc1 + ReLU."""

    def __init__(self, mel_bins: int = 64, width: int = CNN14_WIDTH) -> None:
        super().__init__()
        self.bn0 = nn.BatchNorm2d(mel_bins)  # per-mel-bin input normalisation
        chans = [1] + [width * 2**k for k in range(6)]
        for k in range(6):
            setattr(self, f"conv_block{k + 1}", ConvBlock(chans[k], chans[k + 1]))
        self.fc1 = nn.Linear(chans[-1], chans[-1])
        self.out_dim = chans[-1]

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        x = logmel.unsqueeze(1)  # (B, 1, T, M)
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        for k in range(6):
            block: ConvBlock = getattr(self, f"conv_block{k + 1}")
            x = block(x, (2, 2) if k < 5 else (1, 1))
        x = x.mean(dim=3)
        x = x.max(dim=2).values + x.mean(dim=2)
        return F.relu(self.fc1(x))


def cnn14_state(checkpoint: Mapping[str, object]) -> dict[str, torch.Tensor]:
    """The encoder's tensors from a PANNs checkpoint ({'model': sd} or a bare sd; `module.` stripped);
    the STFT/log-mel front end and the AudioSet head are dropped."""
    state = checkpoint.get("model", checkpoint)
    if not isinstance(state, Mapping):
        raise ValueError("checkpoint holds no state_dict (expected {'model': {...}} or a bare state_dict)")
    skip = ("spectrogram_extractor.", "logmel_extractor.", "fc_audioset.")
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = str(key).removeprefix("module.")
        if not name.startswith(skip) and isinstance(value, torch.Tensor):
            out[name] = value
    return out


class LogMelStats(nn.Module):
    """Weight-free: per mel bin, the time mean (minus the chunk's overall mean, so loudness drops out),
    the time standard deviation (rhythm, modulation) and max minus mean (onsets): 3 x mel_bins."""

    def __init__(self, mel_bins: int = 64) -> None:
        super().__init__()
        self.out_dim = 3 * mel_bins

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        mean = logmel.mean(dim=1)
        shape = mean - mean.mean(dim=1, keepdim=True)
        spread = logmel.std(dim=1, unbiased=False)
        peak = logmel.max(dim=1).values - mean
        return torch.cat([shape, spread, peak], dim=1)


def l2_rows(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x.float(), dim=1)
