"""The frame-features stage's typed config; speed and politeness fields never enter the config hash."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tasks.youtube.client import ClientSettings

# These change how fast, where or how politely we work, never which features come out.
SPEED_FIELDS = {
    "device",
    "batch_2d",
    "batch_3d",
    "decode_workers",
    "keep_videos",
    "min_free_gb",
    "timeout_base_s",
    "timeout_per_video_s",
    "demo_url",
    "cookiefile",
    "proxy",
    "socket_timeout_s",
    "retries",
}


class ExtractFeaturesConfig(BaseModel):
    """Download each kept video once, then ResNet-152 at 1 fps and ResNeXt-101 3D on 16-frame clips."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    models: tuple[Literal["resnet152", "resnext101"], ...] = ("resnet152", "resnext101")
    # Without real weights the stage refuses to run unless this is set; then every row says
    # random_weights=true (the demo sets it: no pretrained weights can be downloaded there).
    random_weights: bool = False
    resnet_weights: str | None = Field(None, description="ResNet-152 ImageNet V1 state_dict path")
    resnext_weights: str | None = Field(None, description="ResNeXt-101 Kinetics checkpoint path")
    calibration_seed: int = 0
    # Reference sizes are 224 (2D short side) and 112 (3D short side and crop); smaller only for tests.
    short_side_2d: int = Field(224, ge=32)
    size_3d: int = Field(112, ge=32)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N")
    batch_2d: int = Field(16, ge=1)
    batch_3d: int = Field(8, ge=1)
    decode_workers: int = Field(2, ge=1, le=64)
    timeout_base_s: float = Field(30.0, gt=0)
    timeout_per_video_s: float = Field(0.5, gt=0, description="decode budget per second of video")
    keep_videos: bool = False
    min_free_gb: float = Field(2.0, ge=0, description="refuse to download when less disk is free")
    demo_url: str | None = None
    cookiefile: str | None = None
    proxy: str | None = None
    socket_timeout_s: float = Field(20.0, gt=0)
    retries: int = Field(3, ge=0)

    def client_settings(self) -> ClientSettings:
        return ClientSettings(
            demo_url=self.demo_url,
            cookiefile=self.cookiefile,
            proxy=self.proxy,
            socket_timeout_s=self.socket_timeout_s,
            retries=self.retries,
        )

    def __repr_args__(self):  # type: ignore[no-untyped-def]
        # Keep proxy credentials and the cookie file's path out of reprs (Prefect logs parameters).
        for name, value in super().__repr_args__():
            yield name, ("***" if name in {"cookiefile", "proxy"} and value else value)
