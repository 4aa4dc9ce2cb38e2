"""The folded 3D stem's input made from raw uint8 clips in one pass by our C kernel (csrc/stem_windows.c).

FoldedStem.forward_clips (models/packed.py) builds the windows the stem reads with torch ops: the clips
minus the mean written into a zero-padded bf16 buffer, each output column's kw input columns gathered
side by side into a second buffer, and its zero channel filled. Four passes over a 2-clip chunk (the
subtraction alone ran at about 1.5 G values a second over 3-channel rows); the kernel normalises each
input row once into a row buffer that stays in L1 and copies each window out of it. Measured on 2 Xeon
cores with AMX, one 2-clip chunk of 16x112x112, bf16, medians of 21: 0.29 ms against 1.46 ms (a first
scalar build of the kernel: 1.05 ms). In the whole 3D encoder, a packed batch of 32 clips, 16 pairs in
one process, which of the two ran first alternating: 499 against 526 ms, 1.051x (quartiles 1.04-1.07),
the features bit-identical. The same bits (a test): the values are rounded once from float32, to
nearest even, as torch rounds them. bf16 only, on any x86 CPU with a C compiler; fp32 and any process
where the kernel cannot be built keep the torch ops.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import torch

from models import c_build

SOURCE = Path(__file__).parent / "csrc" / "stem_windows.c"
FLAGS = ("-O3", "-fPIC", "-shared", "-fopenmp")
VECTOR_FLAGS = ("-mavx512f", "-mavx512bw")  # where the CPU has them: the kernel's vector path
_P, _I, _L = ctypes.c_void_p, ctypes.c_int, ctypes.c_long


@functools.cache
def windows_kernel() -> ctypes.CDLL:
    """The loaded kernel, built on first use (with its AVX-512 path where the CPU has AVX-512BW);
    KernelUnavailable where it cannot run here (cached)."""
    from models.cpu_precision import has_avx512bw

    return load_kernel(FLAGS + (VECTOR_FLAGS if has_avx512bw() else ()))


def load_kernel(flags: tuple[str, ...]) -> ctypes.CDLL:
    """The kernel built with `flags` (FLAGS: its scalar path only), loaded and declared."""
    lib = c_build.load(c_build.build(SOURCE, flags))
    c_build.declare(lib, "stem_windows_u8", ctypes.c_int, [_P, _P, _P, _L] + [_I] * 8)
    return lib


@functools.cache
def windows_kernel_available() -> bool:
    """Whether the folded stem's bf16 windows come from the C kernel here; why not is logged once."""
    return c_build.runs_here(windows_kernel, "stem windows kernel", "torch ops instead")


def clip_windows(
    clips: torch.Tensor,
    mean: torch.Tensor,
    kw: int,
    sw: int,
    pw: int,
    channels: int,
    kernel: ctypes.CDLL | None = None,
) -> torch.Tensor | None:
    """(N, T, H, W_out, channels) bf16 windows of uint8 (N, T, H, W, C) clips minus `mean` (C values), as
    FoldedStem.windows makes them from the normalised clips; None where the kernel does not take them
    (not contiguous uint8 on a CPU, or a row too wide for its buffer): the caller's torch ops run.
    `kernel`: a build of load_kernel's (default: windows_kernel's)."""
    if (
        clips.dtype != torch.uint8
        or clips.device.type != "cpu"
        or clips.dim() != 5
        or not clips.is_contiguous()
    ):
        return None
    n, t, h, w, c = clips.shape
    w_out = (w + 2 * pw - kw) // sw + 1
    if w_out < 1:
        return None  # no window fits: the torch ops say so in their own words
    out = torch.empty(n, t, h, w_out, channels, dtype=torch.bfloat16)
    means = mean.reshape(c).float().contiguous()
    failed = (kernel or windows_kernel()).stem_windows_u8(
        clips.data_ptr(), means.data_ptr(), out.data_ptr(), n * t * h, w, c, kw, sw, pw, w_out, channels,
        torch.get_num_threads(),
    )  # fmt: skip
    return None if failed else out
