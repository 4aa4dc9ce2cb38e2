"""The front of ResNeXt-101's layer1 and layer2 bottlenecks (1x1 reduce, then the grouped 3x3x3 conv of 4-
or 8-channel groups) on our own AMX kernel, csrc/amx_bottleneck.c; its header says how it works.

Why: profiled on 2 Xeon cores with AMX, a 32-clip 3D batch in bf16 spent about 20% of its time in the
grouped convs of layer1-3; layer1's ran at 246 GFLOP/s of useful work, as oneDNN merges its groups into
groups of 32 channels of which an eighth of each product is useful. The kernel's tiles make 37.5% (4
channels a group) and 75% (8) of their products useful, and it keeps the 1x1 conv's output in the form the
grouped conv reads, in cache: no copy between them. Measured on that machine, interleaved in one process,
the same weights, the block's input written by a oneDNN conv just before (as in the model): layer1's front
on a 2-clip chunk 1.59 against 2.10 ms (its first block, 64 channels in: 1.21 against 1.81), layer2's 0.57
against 0.76 ms; the whole 3D batch of 32 clips 1.04-1.07x faster (four runs: 0.573 against 0.611 s, 0.593
against 0.634, 0.584 against 0.611, 0.647 against 0.677). Cosine of the features to the fp32 model's:
0.9999939 against oneDNN's 0.9999936 (minimum over the batch); on a demo video's clips, where bf16 moves
the calibrated random-weight model's features more, 0.99158 against 0.99148.

The kernel is C, compiled here on first use and loaded with ctypes after torch (models/c_build.py).
Without a compiler, where it fails to build, on a CPU (or under an ISA cap) without AMX, or with
HOWTO_AMX_KERNEL=0, the packed path runs these convs on oneDNN as before (models/packed.py), and the log
says why once.
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from pathlib import Path

import torch
from torch import nn

from models import c_build
from models.bn_fold import fold_conv_bn
from models.c_build import KernelUnavailable

SOURCE = Path(__file__).parent / "csrc" / "amx_bottleneck.c"
# The ISA extensions the kernel uses, named rather than -march=native: the library must run on any CPU
# with AMX, whichever machine built it (a cache folder may be shared).
FLAGS = (
    "-O3", "-fPIC", "-shared", "-fopenmp", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq",
    "-mavx512bf16", "-mamx-tile", "-mamx-bf16",
)  # fmt: skip
GROUP_CHANNELS = (4, 8)  # the group widths the kernel computes
TILE_ROWS = 16  # positions in a tile of the 1x1 conv: a frame needs at least this many
DISABLE_VARIABLE = "HOWTO_AMX_KERNEL"
_P, _I = ctypes.c_void_p, ctypes.c_int


def build(directory: Path | None = None) -> Path:
    """The kernel's shared library, compiled into `directory` (default: c_build.cache_dir()) unless there."""
    return c_build.build(SOURCE, FLAGS, directory)


@functools.cache
def kernel() -> ctypes.CDLL:
    """The loaded kernel, built on first use. KernelUnavailable where it cannot run here (cached: a
    process asks the compiler and the CPU once)."""
    from models.cpu_precision import amx_in_use

    if os.environ.get(DISABLE_VARIABLE, "").strip() == "0":
        raise KernelUnavailable(f"turned off by {DISABLE_VARIABLE}=0")
    if not amx_in_use():
        raise KernelUnavailable("no AMX tiles on this CPU (or an ISA cap below AMX)")
    lib = c_build.load(build())
    if lib.amx_request() != 0:
        raise KernelUnavailable("Linux refused this process AMX's tile state (arch_prctl)")
    c_build.declare(lib, "scratch_bytes", ctypes.c_long, [_I] * 7)
    c_build.declare(lib, "bottleneck_front", None, [_P] * 7 + [_I] * 8)
    return lib


def available() -> bool:
    """Whether the kernel runs here; why not is logged once."""
    return c_build.runs_here(kernel, "AMX bottleneck kernel", "oneDNN runs those convs")


def fits(block: nn.Module) -> bool:
    """A bottleneck whose front the kernel computes: conv1 a 1x1x1 conv, stride 1, no groups, input
    channels a multiple of 32; conv2 3x3x3, stride 1, padding 1, no dilation, groups of 4 or 8 channels,
    as many out as in, a multiple of 64 channels (conv1's tiles go 4 x 16 channels at a time)."""
    conv1, conv2 = getattr(block, "conv1", None), getattr(block, "conv2", None)
    if not isinstance(conv1, nn.Conv3d) or not isinstance(conv2, nn.Conv3d) or conv2.groups == 1:
        return False
    width = conv2.in_channels // conv2.groups
    return (
        conv1.kernel_size == (1, 1, 1)
        and conv1.stride == (1, 1, 1)
        and conv1.groups == 1
        and conv1.in_channels % 32 == 0
        and conv1.out_channels == conv2.in_channels == conv2.out_channels
        and conv2.kernel_size == (3, 3, 3)
        and conv2.stride == (1, 1, 1)
        and conv2.padding == (1, 1, 1)
        and conv2.dilation == (1, 1, 1)
        and width in GROUP_CHANNELS
        and conv2.in_channels % 64 == 0
    )


def _pairs(b: torch.Tensor) -> torch.Tensor:
    """(..., 32, 16) matrices as AMX's bf16 tiles: row r holds rows 2r and 2r + 1 interleaved by column."""
    shape = b.shape[:-2]
    return (
        b.to(torch.bfloat16).reshape(*shape, 16, 2, 16).transpose(-1, -2).reshape(*shape, 16, 32).contiguous()
    )


def pack_1x1(weight: torch.Tensor) -> torch.Tensor:
    """(C, Cin) 1x1 weights as (Cin / 32) x (C / 16) tiles of B[k, n] = weight[16j + n, 32i + k]."""
    channels, cin = weight.shape
    b = weight.float().t().reshape(cin // 32, 32, channels // 16, 16).permute(0, 2, 1, 3)
    return _pairs(b)


def pack_grouped(weight: torch.Tensor, width: int) -> torch.Tensor:
    """(C, c, 3, 3, 3) grouped weights as tiles per group and (dt, dh) tap: B[p * c + ci, s * c + co] =
    weight[g * c + co, ci, dt, dh, p - s] where 0 <= p - s <= 2 (position p of a tile row's input, output
    s of the row), else 0. Returns (G, 9, 16, 32) bf16."""
    groups, outputs = weight.shape[0] // width, 16 // width
    taps = weight.float().reshape(groups, width, width, 3, 3, 3)  # g, co, ci, dt, dh, dw
    b = torch.zeros(groups, 3, 3, 32, 16)
    for s in range(outputs):
        for dw in range(3):
            p = s + dw
            block = taps[..., dw].permute(0, 3, 4, 2, 1)  # g, dt, dh, ci, co
            b[:, :, :, p * width : (p + 1) * width, s * width : (s + 1) * width] = block
    return _pairs(b.reshape(groups, 9, 32, 16))


_SCRATCH = threading.local()


def _scratch(size: int) -> torch.Tensor:
    """The calling thread's scratch for the kernel, at least `size` bytes: one buffer a thread, shared by
    every block (they run one after another), kept across calls (a fresh one was page-faulted in at every
    call) and still warm in cache from the block before."""
    buffer: torch.Tensor | None = getattr(_SCRATCH, "buffer", None)
    if buffer is None or buffer.numel() < size:
        buffer = _SCRATCH.buffer = torch.empty(size, dtype=torch.uint8)
    return buffer


class AmxBottleneckFront(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x)))))) of a bottleneck that `fits`, BatchNorm folded in fp32, on the
    kernel: bf16 channels-last in and out. `fallback` computes the same where a frame is smaller than a
    tile (fewer than 16 positions): the oneDNN form (models/packed.py)."""

    def __init__(self, block: nn.Module, fallback: nn.Module) -> None:
        super().__init__()
        assert fits(block)
        w1, self.b1 = fold_conv_bn(block.conv1, block.bn1)
        w2, self.b2 = fold_conv_bn(block.conv2, block.bn2)
        self.width = block.conv2.in_channels // block.conv2.groups
        self.channels, self.cin = w1.shape[0], w1.shape[1]
        # Plain attributes, not parameters: frozen, and `.to()` must leave them alone.
        self.w1 = pack_1x1(w1.reshape(self.channels, self.cin))
        self.w2 = pack_grouped(w2, self.width)
        self.fallback = fallback

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, cin, t, h, w = x.shape
        if h * w < TILE_ROWS:
            return self.fallback(x)
        lib = kernel()
        rows = x.to(torch.bfloat16).permute(0, 2, 3, 4, 1).contiguous()  # a view where x is channels-last
        threads = torch.get_num_threads()
        scratch = _scratch(lib.scratch_bytes(n, t, h, w, self.channels, self.width, threads))
        out = torch.empty(n, t, h, w, self.channels, dtype=torch.bfloat16)
        # Named for torch's profiler (`howto bench features --profile`), which sees no op in a ctypes call.
        with torch.profiler.record_function(f"amx_bottleneck_front {cin}->{self.channels}/{self.width}"):
            lib.bottleneck_front(
                rows.data_ptr(), self.w1.data_ptr(), self.b1.data_ptr(), self.w2.data_ptr(),
                self.b2.data_ptr(), out.data_ptr(), scratch.data_ptr(), n, t, h, w, cin, self.channels,
                self.width, threads,
            )  # fmt: skip
        return out.permute(0, 4, 1, 2, 3)
