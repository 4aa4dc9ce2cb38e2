"""Load the audio encoder: PANNs Cnn14 weights from a path, BatchNorm-calibrated random ones, or none needed."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.audio_encoder import CNN14_WIDTH, Cnn14, LogMelStats, cnn14_state
from models.calibration import recalibrate_batchnorm
from models.torch_files import NotACheckpoint, load_torch_file, weights_into
from tasks.audio.config import ExtractAudioConfig
from tasks.audio.logmel import DEFAULT, log_mel, per_second

log = logging.getLogger(__name__)

CALIBRATION_SECONDS = 24


class AudioWeightsMissing(RuntimeError):
    """cnn14 was asked for without weights and without permission to use random ones."""


def check_audio_weights(cfg: ExtractAudioConfig) -> None:
    """Fail before any work: a given path missing, a width the checkpoint cannot fill, or no weights."""
    if cfg.encoder != "cnn14":
        return
    if cfg.weights:
        if not Path(cfg.weights).is_file():
            raise AudioWeightsMissing(f"{cfg.weights}: cnn14 weights file not found")
        if cfg.width != CNN14_WIDTH:
            raise AudioWeightsMissing(f"cnn14 weights need width={CNN14_WIDTH}, not {cfg.width}")
        _weighted_cnn14(cfg, mmap=True)  # NotACheckpoint now, not in the first shard
    elif not cfg.random_weights:
        raise AudioWeightsMissing(
            "no cnn14 weights: pass --audio-weights PATH (audio.weights; PANNs Cnn14_16k_mAP=0.438.pth), "
            "use --audio-encoder logmel_stats (audio.encoder), or allow --random-weights (audio.random_weights=true)"
        )


WEIGHTS_KIND = "PANNs Cnn14"


def _weighted_cnn14(cfg: ExtractAudioConfig, mmap: bool) -> Cnn14:
    """Cnn14 holding the weights file's tensors (built on the meta device, no random init thrown away);
    NotACheckpoint when the file is not such weights."""
    name = str(cfg.weights)
    checkpoint = load_torch_file(name, WEIGHTS_KIND, mmap=mmap)
    if not isinstance(checkpoint, Mapping):
        raise NotACheckpoint(name, WEIGHTS_KIND, f"it holds a {type(checkpoint).__name__}, not a state_dict")
    try:
        state = cnn14_state(checkpoint)
    except ValueError as exc:
        raise NotACheckpoint(name, WEIGHTS_KIND, str(exc)) from exc
    return weights_into(lambda: Cnn14(DEFAULT.n_mels, cfg.width), state, name, WEIGHTS_KIND)


def calibration_logmels(n_seconds: int, seed: int) -> np.ndarray:
    """A fixed sample of one-second log-mel chunks: coloured noises, tones and beeps at several levels."""
    rng = np.random.default_rng(seed)
    sr = DEFAULT.sample_rate
    t = np.arange(sr) / sr
    out = []
    for _ in range(n_seconds):
        noise = np.fft.irfft(
            np.fft.rfft(rng.standard_normal(sr))
            / np.maximum(np.arange(sr // 2 + 1), 1) ** (rng.uniform(0, 2) / 2),
            sr,
        )
        noise /= np.abs(noise).max() + 1e-9
        tone = np.sin(2 * np.pi * np.exp(rng.uniform(np.log(100), np.log(4000))) * t)
        gate = np.mod(t * rng.uniform(1, 10), 1.0) < rng.uniform(0.2, 1.0)
        mix = rng.uniform(0, 1)
        wave = 10 ** rng.uniform(-3, -0.5) * (mix * noise + (1 - mix) * tone * gate)
        out.append(per_second(log_mel(wave.astype(np.float32)), 1000)[0])
    return np.stack(out)


def load_audio_encoder(cfg: ExtractAudioConfig) -> tuple[nn.Module, bool]:
    """(encoder in eval mode, weights are random)."""
    check_audio_weights(cfg)
    if cfg.encoder == "logmel_stats":
        return LogMelStats(DEFAULT.n_mels).eval(), False
    torch.manual_seed(cfg.calibration_seed)
    if cfg.weights:
        return _weighted_cnn14(cfg, mmap=False).eval(), False
    net = Cnn14(DEFAULT.n_mels, cfg.width)
    log.warning("audio_features: RANDOM WEIGHTS for cnn14 (BatchNorm-calibrated, width %d)", cfg.width)
    sample = torch.from_numpy(calibration_logmels(CALIBRATION_SECONDS, cfg.calibration_seed))
    return recalibrate_batchnorm(net, sample.split(8)), True
