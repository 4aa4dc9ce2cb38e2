"""3D ResNeXt-101 as defined by kenshohara/3D-ResNets-PyTorch (cardinality 32, shortcut B), 2048-d out."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.torch_files import NotACheckpoint, load_torch_file, weights_into

log = logging.getLogger(__name__)

FEATURE_DIM = 2048
CLIP_FRAMES = 16
# The Kinetics checkpoints were trained on 0-255 pixels minus this mean, with no std division.
KINETICS_MEAN = (110.63666788, 103.16065604, 96.29023126)


class Bottleneck(nn.Module):
    """ResNeXt bottleneck: 1x1x1 reduce, grouped 3x3x3, 1x1x1 expand (x2), residual."""

    expansion = 2

    def __init__(
        self,
        inplanes: int,
        planes: int,
        cardinality: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        mid = cardinality * (planes // 32)
        self.conv1 = nn.Conv3d(inplanes, mid, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm3d(mid)
        self.conv2 = nn.Conv3d(
            mid, mid, kernel_size=3, stride=stride, padding=1, groups=cardinality, bias=False
        )
        self.bn2 = nn.BatchNorm3d(mid)
        self.conv3 = nn.Conv3d(mid, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm3d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


class ResNeXt3D(nn.Module):
    """The kenshohara ResNeXt trunk; parameter names match the authors' checkpoints (fc is kept for loading)."""

    mean: torch.Tensor

    def __init__(
        self, layers: tuple[int, int, int, int] = (3, 4, 23, 3), cardinality: int = 32, num_classes: int = 400
    ) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv3d(3, 64, kernel_size=7, stride=(1, 2, 2), padding=(3, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(128, layers[0], cardinality)
        self.layer2 = self._make_layer(256, layers[1], cardinality, stride=2)
        self.layer3 = self._make_layer(512, layers[2], cardinality, stride=2)
        self.layer4 = self._make_layer(1024, layers[3], cardinality, stride=2)
        self.fc = nn.Linear(cardinality * 32 * Bottleneck.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
        # On an explicit device: in no state dict, so also real when the net is built on meta (skeleton.py).
        mean = torch.tensor(KINETICS_MEAN, device="cpu").view(1, 3, 1, 1, 1)
        self.register_buffer("mean", mean, persistent=False)

    def _make_layer(self, planes: int, blocks: int, cardinality: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        out_planes = planes * Bottleneck.expansion
        if stride != 1 or self.inplanes != out_planes:
            # Shortcut B: a strided 1x1x1 projection whenever the shape changes.
            downsample = nn.Sequential(
                nn.Conv3d(self.inplanes, out_planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm3d(out_planes),
            )
        layers: list[nn.Module] = [Bottleneck(self.inplanes, planes, cardinality, stride, downsample)]
        self.inplanes = out_planes
        layers += [Bottleneck(self.inplanes, planes, cardinality) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 16, H, W, 3) clips in, (N, 2048) features (global average pool, before fc) out."""
        return self.back(self.front(clips))

    def front(self, clips: torch.Tensor) -> torch.Tensor:
        """The large-activation half: input normalisation, stem, maxpool, layer1, layer2 and layer3's first
        (strided) block, whose 1x1 conv still reads layer2's output (512 channels at a quarter of the
        frames and an eighth of the side). The packed CPU path runs it a few clips at a time, so these
        activations stay in cache (models/packed.py). Why layer3's first block too: run on the whole batch
        of 32 clips its first conv read 26 MB of concatenated chunks from memory (14 ms against 7 alone);
        in the front, paired runs of the whole packed batch alternating in one process (24 pairs, bf16 on
        2 Xeon cores with AMX) were 1.057x faster (quartiles 1.03-1.08). fp32: 1.01x, under an AVX2 cap
        1.02x (8 pairs each). Layer3's second block in the front too: 1.01x, no better."""
        stem_on_clips = getattr(self.conv1, "forward_clips", None)
        if stem_on_clips is not None:  # a packed stem takes the clips as they come (models/packed.py)
            x = stem_on_clips(clips, self.mean)
        else:
            # NTHWC permuted to NCTHW is channels_last_3d in memory already. Mean removal in fp32, then
            # the trunk in its weights' dtype (bf16 once converted, see encoders.py).
            x = self.conv1((clips.permute(0, 4, 1, 2, 3).float() - self.mean).to(self.conv1.weight.dtype))
        x = self.maxpool(self.relu(self.bn1(x)))
        return self.layer3[0](self.layer2(self.layer1(x)))

    def back(self, x: torch.Tensor) -> torch.Tensor:
        """layer3 after its first block, layer4 and the global average pool, on `front`'s output."""
        # The blocks in turn, not a sliced Sequential: torch.fx (compiled.py) traces only modules
        # installed in the model.
        for block in list(self.layer3)[1:]:
            x = block(x)
        return self.layer4(x).float().mean(dim=(2, 3, 4))

    FRONT_SPAN = "stem..layer3.0"  # what `front` runs, for the bench's path line

    @staticmethod
    def front_rows(dtype: torch.dtype) -> int | None:
        """Clips per chunk of `front` on the packed CPU path, in every dtype (models/packed.py says why)."""
        return 2


WEIGHTS_KIND = "ResNeXt-101"


def load_resnext_state(path: str | os.PathLike[str], mmap: bool = False) -> dict[str, torch.Tensor]:
    """A checkpoint as a plain state_dict: bare, or the original {'state_dict': {'module.*': ...}} form."""
    raw: Any = load_torch_file(path, WEIGHTS_KIND, mmap=mmap)
    state = raw.get("state_dict", raw) if isinstance(raw, dict) else None
    if not isinstance(state, dict) or not state:
        raise NotACheckpoint(str(path), WEIGHTS_KIND, "no state_dict in it")
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in state.items()}


def check_resnext_weights(weights: str | os.PathLike[str]) -> None:
    """NotACheckpoint unless the file holds ResNeXt-101 3D weights: a quick look (mapped, not read)."""
    weights_into(ResNeXt3D, load_resnext_state(weights, mmap=True), str(weights), WEIGHTS_KIND)


def build_resnext101(weights: str | os.PathLike[str] | None) -> ResNeXt3D:
    """ResNeXt-101 3D; random init when `weights` is None (the caller decides if that is allowed)."""
    if weights is None:
        return ResNeXt3D().eval()
    if not Path(weights).is_file():
        raise FileNotFoundError(f"{weights}: ResNeXt-101 weights not found")
    net = weights_into(ResNeXt3D, load_resnext_state(weights), str(weights), WEIGHTS_KIND)
    log.info("loaded ResNeXt-101 weights from %s", weights)
    return net.eval()
