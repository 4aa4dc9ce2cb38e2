"""The audio_features stage's typed config: which encoder and weights decide the rows; device and batch never."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tasks.config_types import ExplicitDevice, LocalFile
from tasks.stage_config import RunOnly, StageConfig

AudioEncoderName = Literal["logmel_stats", "cnn14"]


class ExtractAudioConfig(StageConfig):
    """Decode each video's track to 16 kHz mono, log-mel it (tasks/audio/logmel.py), encode every second.

    `logmel_stats` needs no weights (the default, so the stage runs anywhere). `cnn14` is PANNs' Cnn14
    (Kong et al. 2020): pass `weights` = the 16 kHz checkpoint `Cnn14_16k_mAP=0.438.pth`; without it the
    stage refuses unless `random_weights` (then BatchNorm-calibrated random weights, rows say so).
    """

    encoder: AudioEncoderName = "logmel_stats"
    weights: LocalFile | None = Field(
        default=None, description="PANNs Cnn14_16k checkpoint path (cnn14 only)"
    )
    random_weights: bool = False
    width: int = Field(default=64, ge=4, le=64, description="Cnn14 channels of the first block (64 = PANNs)")
    calibration_seed: int = 0
    # A track that reaches this for under 0.5 s in all (a click is no sound) is 'silent' (rows kept and flagged).
    silence_dbfs: float = Field(default=-60.0, le=0)
    device: RunOnly[ExplicitDevice] = Field(default="cpu", description="cpu, cuda or cuda:N")
    batch_s: RunOnly[int] = Field(default=64, ge=1, description="seconds of audio per encoder batch")
    timeout_s: RunOnly[float] = Field(default=600.0, gt=0, description="ffmpeg budget per file")
    max_download_mb: RunOnly[float | None] = Field(default=500.0, gt=0)
    min_free_gb: RunOnly[float] = Field(default=2.0, ge=0)
