"""A conv's weights with its BatchNorm folded in, in fp32: shared by the packed oneDNN convs
(models/packed.py) and the AMX kernel's (models/amx_bottleneck.py)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights


def fold_conv_bn(conv: nn.Module, bn: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) of bn(conv(x)) as one conv, computed in fp32 (detached), so that a later cast to
    bf16 rounds the folded product once: folding after the cast would round it twice."""
    assert bn.running_mean is not None and bn.running_var is not None, "BatchNorm without statistics"
    weight, bias = fuse_conv_bn_weights(
        conv.weight.float(), None if conv.bias is None else conv.bias.float(),
        bn.running_mean.float(), bn.running_var.float(), bn.eps, bn.weight.float(), bn.bias.float(),
    )  # fmt: skip
    return weight.detach(), bias.detach().float().contiguous()
