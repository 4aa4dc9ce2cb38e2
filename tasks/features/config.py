"""The frame-features stage's typed config: run-only fields (device, batches, disk) are never hashed,
and how we reach the site is tasks/youtube/access.py, never part of this config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tasks.config_types import Device, LocalFile
from tasks.stage_config import RunOnly, StageConfig


class ExtractFeaturesConfig(StageConfig):
    """Download each kept video once, then ResNet-152 at 1 fps and ResNeXt-101 3D on 16-frame clips."""

    models: tuple[Literal["resnet152", "resnext101"], ...] = ("resnet152", "resnext101")
    # Without real weights the stage refuses to run unless this is set; then every row says
    # random_weights=true (the demo sets it: no pretrained weights can be downloaded there).
    random_weights: bool = False
    resnet_weights: LocalFile | None = Field(
        default=None, description="ResNet-152 ImageNet V1 state_dict path"
    )
    resnext_weights: LocalFile | None = Field(
        default=None, description="ResNeXt-101 Kinetics checkpoint path"
    )
    calibration_seed: int = 0
    # Reference sizes are 224 (2D short side) and 112 (3D short side and crop); smaller only for tests.
    short_side_2d: int = Field(default=224, ge=32)
    size_3d: int = Field(default=112, ge=32)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    # Media caps: a video past either is a failed row (drop reason too_large / too_long), never decoded.
    # Safety limits, not data choices: outside the data hash, so adding or moving them keeps finished shards.
    max_download_mb: RunOnly[float | None] = Field(
        default=2000.0, gt=0, description="largest download (yt-dlp max_filesize); none: no cap"
    )
    max_media_duration_s: RunOnly[float | None] = Field(
        default=7200.0, gt=0, description="longest downloaded media, as ffprobe reads it; none: no cap"
    )
    # How fast and where we work, never which features come out.
    device: RunOnly[Device] = Field(default="auto", description="auto, cpu, cuda or cuda:N")
    batch_2d: RunOnly[int | None] = Field(default=None, ge=1, description="none: 16 on CPU, 64 on CUDA")
    batch_3d: RunOnly[int | None] = Field(default=None, ge=1, description="none: 32 on CPU, 64 on CUDA")
    decode_workers: RunOnly[int | None] = Field(
        default=None, ge=1, le=64, description="videos decoded at once; none: 2 on CPU, one per core on CUDA"
    )
    batching: RunOnly[Literal["auto", "per_video", "across_videos"]] = Field(
        default="auto", description="auto: across videos on CUDA (big batches), per video on CPU (same bits)"
    )
    compile: RunOnly[Literal["auto", "on", "off"]] = Field(
        default="auto",
        description="torch.compile with CUDA graphs; auto: on for CUDA (the CPU path is packed)",
    )
    decode_hwaccel: RunOnly[Literal["auto", "none", "cuda"]] = Field(
        default="auto",
        description="hardware decoding (NVDEC); auto: cuda when on CUDA and the ffmpeg command line decodes "
        "there (PyAV decodes faster on the CPU)",
    )
    decoder: RunOnly[Literal["auto", "ffmpeg", "pyav", "pyav-child", "pyav-gpu"]] = Field(
        default="auto",
        description="ffmpeg: the ffmpeg command line; pyav: FFmpeg's libraries in process; pyav-child: the "
        "same in a child process per video (same frames every way); auto: ffmpeg when installed, else pyav "
        "(pyav-child on a GPU, where many decoders run), and pyav where only it decodes on the GPU; "
        "pyav-gpu (asked for only): NVDEC's frames kept on the GPU and converted, scaled and cropped there "
        "in torch (features within cosine 0.99 of the CPU's frames, not bit-identical)",
    )
    timeout_base_s: RunOnly[float] = Field(default=30.0, gt=0)
    timeout_per_video_s: RunOnly[float] = Field(
        default=0.5, gt=0, description="decode budget per second of video"
    )
    keep_videos: RunOnly[bool] = False
    min_free_gb: RunOnly[float] = Field(
        default=2.0, ge=0, description="refuse to download when less disk is free"
    )
