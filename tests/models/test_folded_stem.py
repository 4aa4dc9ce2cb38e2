"""The 3D stem with its kernel's width taps folded into channels (models/packed.py FoldedStem): the same
conv as the direct packed one, for any frame width, stride and padding it meets."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models.cpu_precision import cpu_bf16_supported
from models.packed import (
    FoldedStem,
    PackedConv,
    PackedEncoder,
    foldable_stem,
    folded_channels,
    onednn_available,
    pack_for_onednn,
)
from models.resnet2d import build_resnet152
from models.resnext3d import build_resnext101

pytestmark = pytest.mark.skipif(not onednn_available(), reason="this torch has no oneDNN (mkldnn) CPU ops")
# oneDNN refuses bf16 convolutions on a CPU without bf16 kernels (AVX2 only): such a CPU runs fp32 only.
needs_bf16 = pytest.mark.skipif(
    not cpu_bf16_supported(), reason="oneDNN runs bf16 convs only where the CPU has bf16 kernels"
)


def _conv_bn(
    channels: int, kernel: tuple[int, int, int], stride: tuple[int, int, int], padding: tuple[int, int, int]
) -> tuple[nn.Conv3d, nn.BatchNorm3d]:
    torch.manual_seed(0)
    conv = nn.Conv3d(channels, 16, kernel, stride, padding, bias=False).eval()
    bn = nn.BatchNorm3d(16).eval()
    with torch.no_grad():  # statistics that are not the identity, so the BatchNorm fold is exercised
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    return conv, bn


def _clips(n: int, channels: int, t: int, h: int, w: int) -> torch.Tensor:
    """Channels-last input, as the encoders hand the stem its frames."""
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, t, h, w, channels, generator=g).mul(40).permute(0, 4, 1, 2, 3)


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "width"),
    [
        ((7, 7, 7), (1, 2, 2), (3, 3, 3), 112),  # ResNeXt-101's stem at the reference size
        ((7, 7, 7), (1, 2, 2), (3, 3, 3), 31),  # an odd width: the last window ends in the padding
        ((7, 7, 7), (1, 2, 2), (3, 3, 3), 6),  # narrower than the kernel
        ((3, 5, 5), (1, 1, 3), (1, 2, 1), 40),  # another kernel, stride and padding along W
    ],
)
def test_the_folded_stem_is_the_direct_conv(
    kernel: tuple[int, int, int], stride: tuple[int, int, int], padding: tuple[int, int, int], width: int
) -> None:
    conv, bn = _conv_bn(3, kernel, stride, padding)
    x = _clips(2, 3, 8, 24, width)
    direct = PackedConv(conv, bn, torch.float32, relu=True)(x)
    folded = FoldedStem(conv, bn, torch.float32)(x)
    assert folded.shape == direct.shape
    assert torch.allclose(folded, direct, rtol=1e-5, atol=1e-4)
    assert float(direct.abs().max()) > 1.0  # a real comparison, not of two zero tensors
    windows = FoldedStem(conv, bn, torch.float32).windows(x)
    assert windows.shape[1] == 3 * kernel[2] and windows.is_contiguous(memory_format=torch.channels_last_3d)


@needs_bf16
def test_the_folded_stem_in_bf16_stays_within_bf16_rounding() -> None:
    conv, bn = _conv_bn(3, (7, 7, 7), (1, 2, 2), (3, 3, 3))
    x = _clips(2, 3, 8, 32, 32)
    reference = PackedConv(conv, bn, torch.float32, relu=True)(x)
    folded = FoldedStem(conv, bn, torch.bfloat16)(x.to(torch.bfloat16)).float()
    assert (
        folded.dtype == torch.float32 and FoldedStem(conv, bn, torch.bfloat16).weight.dtype == torch.bfloat16
    )
    cosine = nn.functional.cosine_similarity(folded.flatten(1), reference.flatten(1), dim=1)
    assert float(cosine.min()) > 0.999


def test_what_can_be_folded() -> None:
    assert foldable_stem(nn.Conv3d(3, 64, 7, (1, 2, 2), 3))
    assert not foldable_stem(nn.Conv3d(128, 128, 3, 1, 1, groups=32))  # a grouped bottleneck conv
    assert not foldable_stem(nn.Conv3d(3, 64, 7, 1, 3, dilation=2))
    assert not foldable_stem(nn.Conv3d(64, 64, (3, 3, 3), 1, 1))  # 192 channels a tap already
    assert not foldable_stem(nn.Conv3d(3, 64, (7, 7, 1), 1, (3, 3, 0)))  # nothing to fold
    assert not foldable_stem(nn.Conv2d(3, 64, 7, 2, 3))  # ResNet-152's 2D stem keeps its form


def test_the_packer_folds_the_3d_stem_only() -> None:
    torch.manual_seed(0)
    net3d = build_resnext101(None).eval()
    folded, direct = (
        pack_for_onednn(net3d, torch.float32),
        pack_for_onednn(net3d, torch.float32, fold_stem=False),
    )
    assert isinstance(folded, PackedEncoder) and isinstance(folded.net.conv1, FoldedStem)
    assert isinstance(direct.net.conv1, PackedConv)
    clips = torch.randint(0, 255, (2, 16, 40, 40, 3), dtype=torch.uint8)
    with torch.inference_mode():
        a, b = folded(clips), direct(clips)
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-4)
    net2d = pack_for_onednn(build_resnet152(None).eval(), torch.float32)
    assert not any(isinstance(m, FoldedStem) for m in net2d.modules())
    assert any(isinstance(m, PackedConv) for m in net2d.modules())


def test_bf16_windows_carry_an_even_channel_count() -> None:
    """bf16 dot products take channels in pairs: 21 folded channels go out as 22, the extra one zero (and
    zero-weighted); fp32 keeps 21."""
    conv, bn = _conv_bn(3, (7, 7, 7), (1, 2, 2), (3, 3, 3))
    x = _clips(2, 3, 8, 24, 24)
    stem = FoldedStem(conv, bn, torch.bfloat16)
    windows = stem.windows(x.to(torch.bfloat16))
    assert windows.shape[1] == 22 and stem.weight.shape[1] == 22
    assert windows.is_contiguous(memory_format=torch.channels_last_3d)
    assert not windows[:, 21].any() and not stem.weight[:, 21].any() and windows[:, :21].any()
    assert folded_channels(21, torch.bfloat16) == 22 and folded_channels(21, torch.float32) == 21
    assert folded_channels(24, torch.bfloat16) == 24
    assert FoldedStem(conv, bn, torch.float32).windows(x).shape[1] == 21


@pytest.mark.parametrize("c_kernel", [True, False], ids=["c-kernel", "torch-ops"])
@pytest.mark.parametrize("dtype", [torch.float32, pytest.param(torch.bfloat16, marks=needs_bf16)])
@pytest.mark.parametrize("width", [112, 31, 6])
def test_the_stem_on_raw_clips_gives_the_bits_of_the_stem_on_normalised_ones(
    dtype: torch.dtype, width: int, c_kernel: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """forward_clips: uint8 NTHWC clips minus the mean, written straight into the padded windows, is the
    encoder's own normalisation (to float, minus the mean, to the weights' dtype) then forward(), bit for
    bit, pad columns and the bf16 zero channel included; in bf16 with the windows from the C kernel
    (models/stem_windows.py) where it builds, and from torch's ops as on a machine where it does not."""
    import models.packed as packed

    if not c_kernel:
        monkeypatch.setattr(packed, "windows_kernel_available", lambda: False)
    elif not packed.windows_kernel_available():
        pytest.skip("no C compiler to build the stem windows kernel")
    conv, bn = _conv_bn(3, (7, 7, 7), (1, 2, 2), (3, 3, 3))
    stem = FoldedStem(conv, bn, dtype)
    g = torch.Generator().manual_seed(2)
    clips = torch.randint(0, 256, (2, 8, 24, width, 3), dtype=torch.uint8, generator=g)
    mean = torch.tensor([114.77, 107.74, 99.48]).view(1, 3, 1, 1, 1)
    normalised = (clips.permute(0, 4, 1, 2, 3).float() - mean).to(dtype)
    with torch.inference_mode():
        expected, got = stem(normalised), stem.forward_clips(clips, mean)
    assert got.dtype == expected.dtype and torch.equal(got, expected)
    assert float(expected.abs().max()) > 1.0


def test_the_packed_3d_encoder_feeds_its_stem_the_raw_clips(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    packed = pack_for_onednn(build_resnext101(None).eval(), torch.float32)
    seen: list[torch.dtype] = []
    original = FoldedStem.forward_clips

    def spy(self: FoldedStem, clips: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        seen.append(clips.dtype)
        return original(self, clips, mean)

    monkeypatch.setattr(FoldedStem, "forward_clips", spy)
    with torch.inference_mode():
        packed(torch.randint(0, 255, (2, 16, 32, 32, 3), dtype=torch.uint8))
    assert seen == [torch.uint8]
