"""ResNet-152 (torchvision's layout and ImageNet V1 weights) truncated before avgpool, spatially averaged to
2048-d."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch import nn

from models.resnet_imagenet import IMAGENET1K_V1_URL, ResNet152
from models.torch_files import load_torch_file, weights_into

log = logging.getLogger(__name__)

FEATURE_DIM = 2048
# 2D features use ImageNet statistics on 0-1 pixels, as torchvision's weights were trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


FRONT_END = 6  # trunk[:6] is conv1, bn1, relu, maxpool, layer1, layer2 (torchvision's order)


class ResNet152Features(nn.Module):
    """uint8 NHWC frames in, (N, 2048) features out: conv trunk then a spatial mean."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, trunk: nn.Sequential) -> None:
        super().__init__()
        self.trunk = trunk
        # On an explicit device: in no state dict, so also real when the net is built on meta (skeleton.py).
        mean, std = (
            torch.tensor(v, device="cpu").view(1, 3, 1, 1) * 255.0 for v in (IMAGENET_MEAN, IMAGENET_STD)
        )
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.back(self.front(frames))

    def front(self, frames: torch.Tensor) -> torch.Tensor:
        """The large-activation half: input normalisation, stem, max pool, layer1 and layer2 (512 channels
        at an eighth of the side). The packed path in bf16 runs it a few frames at a time (front_rows)."""
        # NHWC uint8 permuted to NCHW is already channels_last in memory: no copy before the first conv.
        x = frames.permute(0, 3, 1, 2).float()
        # Normalise in fp32, then run the trunk in its weights' dtype (bf16 once converted, see encoders.py).
        x = ((x - self.mean) / self.std).to(self.trunk[0].weight.dtype)  # type: ignore[union-attr,arg-type]
        return self._layers(x, 0, FRONT_END)

    def back(self, x: torch.Tensor) -> torch.Tensor:
        """layer3, layer4 and the spatial mean, on `front`'s output."""
        return self._layers(x, FRONT_END, len(self.trunk)).float().mean(dim=(2, 3))

    def _layers(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        # The trunk's own modules in turn, not a sliced Sequential: torch.fx (compiled.py) traces only
        # modules installed in the model.
        for layer in list(self.trunk)[start:stop]:
            x = layer(x)
        return x

    FRONT_SPAN = "stem..layer2"  # what `front` runs, for the bench's path line

    @staticmethod
    def front_rows(dtype: torch.dtype) -> int | None:
        """Frames per chunk of `front` on the packed CPU path (models/packed.py), None for the whole batch.

        Why 8 in bf16: a batch of 16 frames of 224x398 holds 46 MB in each of layer1's activations, which
        AMX's convs stream through memory; 8 frames at a time, measured on 2 Xeon cores with AMX, paired
        runs of the whole 16-frame batch alternating in one process (30 pairs): 1.09x faster (quartiles
        1.08-1.11); 4 frames the same as 8; layer3 chunked too, 6% slower than whole. In fp32 (5x slower
        convs, so not memory-bound) the chunks were 3% slower: the whole batch there."""
        return 8 if dtype == torch.bfloat16 else None


def torchvision_cache_path() -> Path:
    """Where torchvision keeps the ImageNet V1 checkpoint once downloaded (never downloaded here)."""
    name = os.path.basename(IMAGENET1K_V1_URL)
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def find_resnet152_weights(explicit: str | os.PathLike[str] | None) -> Path | None:
    """The explicit path if given (must exist), else torchvision's cache if present, else None."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: ResNet-152 weights not found")
        return path
    cached = torchvision_cache_path()
    return cached if cached.is_file() else None


WEIGHTS_KIND = "ResNet-152"


def _weighted_resnet152(weights: str | os.PathLike[str], mmap: bool) -> nn.Module:
    """A ResNet-152 holding the file's tensors (NotACheckpoint when they are not its own)."""
    state = load_torch_file(weights, WEIGHTS_KIND, mmap=mmap)
    return weights_into(ResNet152, state, str(weights), WEIGHTS_KIND)


def check_resnet152_weights(weights: str | os.PathLike[str]) -> None:
    """NotACheckpoint unless the file holds ResNet-152 weights: a second's look (the file is mapped, not
    read), so a stage fails before its work instead of in its first shard."""
    _weighted_resnet152(weights, mmap=True)


def build_resnet152(weights: Path | None) -> ResNet152Features:
    """ResNet-152 features; random init when `weights` is None (the caller decides if that is allowed)."""
    if weights is None:
        return _features(ResNet152())
    net = _features(_weighted_resnet152(weights, mmap=False))
    log.info("loaded ResNet-152 weights from %s", weights)
    return net


def _features(net: nn.Module) -> ResNet152Features:
    trunk = nn.Sequential(*list(net.children())[:-2])  # drop avgpool and fc
    return ResNet152Features(trunk).eval()
