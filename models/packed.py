"""Inference-only oneDNN form of the ResNet encoders: BatchNorm folded into each conv in fp32, weights cast
once to the compute dtype and prepacked, ReLU and the residual add fused into the conv that precedes them.

This is what inductor's freezing pass builds (`mkldnn._convolution_pointwise` on prepacked weights), done
once by hand so there is nothing to compile and any input shape runs (measured on a 2-core AVX-512-bf16
CPU, ResNet-152 bf16: eager with autocast reached ~19% of the bf16 matmul ceiling, a third of its time in
per-call weight reorders and in separate ReLU/add passes; this form does neither).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

_CONVS = (nn.Conv2d, nn.Conv3d)
_NORMS = (nn.BatchNorm2d, nn.BatchNorm3d)
PACKINGS_KEPT = 3  # weight packings kept per conv, one per frame size (ResNet-152 bf16: 120 MB each)


def onednn_available() -> bool:
    """True when this torch has the prepacked oneDNN conv ops (CPU builds with mkldnn)."""
    return bool(torch.backends.mkldnn.is_available()) and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


class PackedConv(nn.Module):
    """conv(x) with BatchNorm folded in, an optional fused ReLU, or a fused `+ residual` then ReLU."""

    def __init__(self, conv: nn.Module, bn: nn.Module, dtype: torch.dtype, relu: bool) -> None:
        super().__init__()
        assert isinstance(conv, _CONVS) and isinstance(bn, _NORMS)
        assert bn.running_mean is not None and bn.running_var is not None, "BatchNorm without statistics"
        # Fold in fp32 and round once: folding after a bf16 cast would round the product twice.
        w, b = fuse_conv_bn_weights(
            conv.weight.float(), None if conv.bias is None else conv.bias.float(),
            bn.running_mean.float(), bn.running_var.float(), bn.eps, bn.weight.float(), bn.bias.float(),
        )  # fmt: skip
        # Plain attributes, not parameters: this module is frozen, and `.to()` must not undo the cast.
        self.weight = w.detach().to(dtype).contiguous()
        self.bias = b.detach().to(dtype)
        self.padding, self.stride = list(conv.padding), list(conv.stride)  # type: ignore[arg-type]
        self.dilation, self.groups = list(conv.dilation), int(conv.groups)  # type: ignore[arg-type]
        self.unary = "relu" if relu else "none"
        self._packed: dict[tuple[int, ...], torch.Tensor] = {}

    def _packed_weight(self, x: torch.Tensor) -> torch.Tensor:
        # oneDNN picks some layers' weight layout from the frame size: a layout packed for another size
        # still runs, but is reordered on every call. So keep one packing per frame size, for the few sizes
        # in use (videos of 16:9, 4:3 and portrait interleave in the compute loop). The layout also depends
        # on whether the batch is a single row; PackedEncoder never lets one through (see there).
        key = tuple(x.shape[1:])
        packed = self._packed.pop(key, None)
        if packed is None:
            if len(self._packed) >= PACKINGS_KEPT:
                del self._packed[next(iter(self._packed))]  # the least recently used
            packed = torch.ops.mkldnn._reorder_convolution_weight(
                self.weight, self.padding, self.stride, self.dilation, self.groups, list(x.shape)
            )
        self._packed[key] = packed
        return packed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._convolution_pointwise(
            x, self._packed_weight(x), self.bias, self.padding, self.stride, self.dilation, self.groups,
            self.unary, [], "",
        )  # fmt: skip

    def add_relu(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """relu(conv(x) + residual), accumulated in place into `residual` (a block-internal tensor)."""
        return torch.ops.mkldnn._convolution_pointwise_.binary(
            residual, x, self._packed_weight(x), self.bias, self.padding, self.stride, self.dilation,
            self.groups, "add", 1.0, "relu", [], "",
        )  # fmt: skip


class PackedBottleneck(nn.Module):
    """A ResNet/ResNeXt bottleneck (conv1..bn3, optional conv+BN downsample) as three or four packed convs."""

    def __init__(self, block: Any, dtype: torch.dtype) -> None:
        super().__init__()
        self.c1 = PackedConv(block.conv1, block.bn1, dtype, relu=True)
        self.c2 = PackedConv(block.conv2, block.bn2, dtype, relu=True)
        self.c3 = PackedConv(block.conv3, block.bn3, dtype, relu=False)
        down = block.downsample
        self.down = None if down is None else PackedConv(down[0], down[1], dtype, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.down is None else self.down(x)
        return self.c3.add_relu(self.c2(self.c1(x)), residual)


def _is_bottleneck(m: nn.Module) -> bool:
    names = ("conv1", "bn1", "conv2", "bn2", "conv3", "bn3")
    return all(hasattr(m, n) for n in names) and hasattr(m, "downsample")


def _pack_children(parent: nn.Module, dtype: torch.dtype) -> None:
    children = list(parent.named_children())
    for i, (name, child) in enumerate(children):
        if _is_bottleneck(child):
            setattr(parent, name, PackedBottleneck(child, dtype))
        elif isinstance(child, _CONVS) and i + 2 < len(children):
            # The stem: conv, BatchNorm, ReLU registered in that order and used only in that order (both
            # encoders); the ReLU is fused, so BN and ReLU become identities.
            (bn_name, bn), (relu_name, relu) = children[i + 1], children[i + 2]
            if isinstance(bn, _NORMS) and isinstance(relu, nn.ReLU):
                setattr(parent, name, PackedConv(child, bn, dtype, relu=True))
                setattr(parent, bn_name, nn.Identity())
                setattr(parent, relu_name, nn.Identity())
        else:
            _pack_children(child, dtype)


class PackedEncoder(nn.Module):
    """A packed encoder that runs a one-row batch as two copies of the row and keeps the first output.

    oneDNN lays out some 1x1 convs' weights differently for a batch of one row (small frames: ResNeXt-101's
    layer3 at 2x7x7). The two layouts do not mix: packed at one row and run at 32, such a conv ran at half
    speed; packed at 2+ rows and run at one, at a twentieth (fp32, AVX2, measured). One packing per frame
    size must therefore serve every batch size; a batch of one (a video's last frame or clip) costs a
    second row instead. The rows are independent, so the kept row's features are the same as in any batch.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 1:
            return self.net(torch.cat([x, x]))[:1]
        return self.net(x)


def pack_for_onednn(model: nn.Module, dtype: torch.dtype) -> PackedEncoder:
    """A packed copy of an eval-mode encoder for CPU inference in `dtype` (the original is untouched).

    Every conv must end up packed (a leftover would meet an input of the wrong dtype): checked here.
    """
    if model.training:
        raise ValueError("pack_for_onednn needs an eval-mode model (BatchNorm statistics are folded)")
    packed = copy.deepcopy(model)
    _pack_children(packed, dtype)
    left = [n for n, m in packed.named_modules() if isinstance(m, (*_CONVS, *_NORMS))]
    if left:
        raise ValueError(f"convs/norms the packer does not know how to fold: {left[:3]}")
    return PackedEncoder(packed).eval()
