"""ResNet-152 for ImageNet (He et al., the "V1.5" form: stride in the 3x3 conv) laid out as torchvision's.

Our own definition rather than `torchvision.models.resnet152`: importing torchvision loads all of its
models and ops, and `torchvision.ops` imports `torch._dynamo`; that is 1.3 s of every features process's
start on an idle AVX2 core (2-3 s under load), for one model. Parameter names follow torchvision's, so its
ImageNet checkpoints (ResNet152_Weights.IMAGENET1K_V1) load as they are; the random init draws the same
numbers in the same order as torchvision's for a given seed (tests/models/test_resnet_imagenet.py holds
both to that), so calibrated random weights (tasks/features/weights.py) are unchanged by the switch.
"""

from __future__ import annotations

import torch
from torch import nn

# torchvision's ImageNet V1 checkpoint: the file name its cache keeps it under (models/resnet2d.py).
IMAGENET1K_V1_URL = "https://download.pytorch.org/models/resnet152-394f9c45.pth"
LAYERS = (3, 8, 36, 3)
EXPANSION = 4


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided here), 1x1 expand (x4), residual; names as torchvision's."""

    def __init__(self, inplanes: int, planes: int, stride: int, downsample: nn.Module | None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * EXPANSION, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * EXPANSION)
        self.relu = nn.ReLU(inplace=True)
        # Registered last, as torchvision does: the order of modules() is the order of the init loop.
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNet152(nn.Module):
    """The ImageNet classifier; models/resnet2d.py keeps its children up to layer4 as the feature trunk."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, LAYERS[0], stride=1)
        self.layer2 = self._make_layer(128, LAYERS[1], stride=2)
        self.layer3 = self._make_layer(256, LAYERS[2], stride=2)
        self.layer4 = self._make_layer(512, LAYERS[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        # Built (its default init drawing from the generator) before the init loop, as in torchvision:
        # without it the convs' kaiming draws would start elsewhere in the random stream.
        self.fc = nn.Linear(512 * EXPANSION, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.constant_(module.weight, 1)
                nn.init.constant_(module.bias, 0)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * EXPANSION:
            # Made before the block that holds it (its conv's default init draws first), as in torchvision.
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * EXPANSION, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * EXPANSION),
            )
        layers: list[nn.Module] = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * EXPANSION
        layers += [Bottleneck(self.inplanes, planes, 1, None) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))
