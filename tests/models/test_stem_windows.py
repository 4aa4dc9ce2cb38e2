"""The folded stem's windows from raw clips by our C kernel (models/stem_windows.py): the bits of the
torch ops they replace, in its vector and scalar builds, for the stem's geometry and others."""

from __future__ import annotations

import ctypes

import pytest
import torch
import torch.nn.functional as F

from models import stem_windows
from models.cpu_precision import cpu_bf16_supported, has_avx512bw
from models.stem_windows import FLAGS, VECTOR_FLAGS, clip_windows, load_kernel, windows_kernel_available

pytestmark = pytest.mark.skipif(not windows_kernel_available(), reason="no C compiler to build the kernel")

MEAN = torch.tensor([114.77, 107.74, 99.48, 3.25, 250.5])


def _builds() -> list[tuple[str, tuple[str, ...]]]:
    builds = [("scalar", FLAGS)]
    if has_avx512bw():
        builds.append(("avx512", FLAGS + VECTOR_FLAGS))
    return builds


def reference(
    clips: torch.Tensor, mean: torch.Tensor, kw: int, sw: int, pw: int, channels: int
) -> torch.Tensor:
    """Minus the mean in float32, rounded once to bf16, zero-padded along W, each output column's kw
    columns side by side, zero channels after them."""
    c = clips.shape[-1]
    normalised = (clips.float() - mean[:c]).to(torch.bfloat16)
    padded = F.pad(normalised, (0, 0, pw, pw))  # W is the second-to-last axis
    windows = padded.unfold(3, kw, sw)  # (N, T, H, W_out, C, kw)
    windows = windows.permute(0, 1, 2, 3, 5, 4).flatten(4)  # kw columns, each C channels
    return F.pad(windows, (0, channels - kw * c))


@pytest.mark.parametrize("build", _builds(), ids=lambda b: b[0])
@pytest.mark.parametrize(
    ("width", "channels_in", "kw", "sw", "pw", "channels"),
    [
        (112, 3, 7, 2, 3, 22),  # ResNeXt-101's stem, its windows made even for bf16
        (31, 3, 7, 2, 3, 22),  # a row that is no multiple of 16 values
        (6, 3, 7, 2, 3, 22),  # narrower than the kernel: most taps in the padding
        (40, 3, 11, 1, 5, 34),  # windows wider than 32 channels: the scalar copy in either build
        (20, 5, 3, 3, 0, 16),  # 5 channels, no padding, stride = width
    ],
)
def test_the_kernel_gives_the_bits_of_the_torch_ops(
    build: tuple[str, tuple[str, ...]], width: int, channels_in: int, kw: int, sw: int, pw: int, channels: int
) -> None:
    g = torch.Generator().manual_seed(width)
    clips = torch.randint(0, 256, (2, 3, 5, width, channels_in), dtype=torch.uint8, generator=g)
    clips[0, 0, 0, :2] = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1)  # the extremes
    got = clip_windows(clips, MEAN[:channels_in], kw, sw, pw, channels, kernel=load_kernel(build[1]))
    assert got is not None and got.dtype == torch.bfloat16
    assert torch.equal(got.view(torch.int16), reference(clips, MEAN, kw, sw, pw, channels).view(torch.int16))


def test_what_the_kernel_does_not_take_falls_back() -> None:
    """Not uint8, not contiguous, or rows wider than its buffer: None, and the caller's torch ops run."""
    clips = torch.randint(0, 256, (1, 2, 3, 16, 3), dtype=torch.uint8)
    mean = MEAN[:3]
    assert clip_windows(clips.float(), mean, 7, 2, 3, 22) is None
    assert clip_windows(clips.transpose(2, 3), mean, 7, 2, 3, 22) is None
    wide = torch.zeros(1, 1, 1, 6000, 3, dtype=torch.uint8)
    assert clip_windows(wide, mean, 7, 2, 3, 22) is None
    assert clip_windows(clips, mean, 7, 2, 3, 20) is None  # 21 values a window do not fit 20 channels
    assert clip_windows(clips[:, :, :, :2].contiguous(), mean, 7, 2, 0, 22) is None  # no window fits


@pytest.mark.skipif(
    not cpu_bf16_supported(), reason="oneDNN runs bf16 convs only where the CPU has bf16 kernels"
)
def test_the_kernel_is_what_the_bf16_folded_stem_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from torch import nn

    from models.packed import FoldedStem

    calls: list[int] = []
    real = stem_windows.windows_kernel()

    class Spy:
        def stem_windows_u8(self, *args: object) -> int:
            calls.append(1)
            return int(real.stem_windows_u8(*args))

    monkeypatch.setattr(stem_windows, "windows_kernel", lambda: Spy())
    stem = FoldedStem(
        nn.Conv3d(3, 8, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False), nn.BatchNorm3d(8).eval(), torch.bfloat16
    )
    clips = torch.randint(0, 256, (1, 4, 16, 16, 3), dtype=torch.uint8)
    mean = MEAN[:3].view(1, 3, 1, 1, 1)
    with torch.inference_mode():
        got = stem.forward_clips(clips, mean)
        expected = stem((clips.permute(0, 4, 1, 2, 3).float() - mean).to(torch.bfloat16))
    assert calls == [1]
    assert torch.equal(got, expected)
    assert isinstance(real, ctypes.CDLL)
