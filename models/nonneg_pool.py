"""Max pooling of non-negative activations (a stem's ReLU output) as separable integer maxima.

For floats of one sign their bit patterns, read as signed integers of the same width, sort in the same
order as the values: so over a ReLU's output (values >= 0, or -0.0, whose pattern is the smallest integer
and whose value equals 0) a max pool picks the same values when it compares the bits as int16 (bf16)
or int32 (fp32). A max over a box is the max over each of its axes in turn, so the pool runs as one pass
per axis over strided views, each a vectorised integer maximum, where ATen's max_pool computes the whole
box per output and the index of each maximum too (max_poolNd_with_indices, even at inference).

Measured on 2 Xeon cores (AMX) in bf16, channels last, ResNeXt-101's stem output of 2 clips
(2x64x16x56x56, 3x3x3, stride 2): 2.6-3.1 ms by ATen, 1.7 ms separable (the outermost axis first: its
views are the longest contiguous runs, so the later passes read the least); the pool was 7% of a 32-clip
3D batch and 4.5% of ResNet-152's 16 frames (ops profiled by `howto bench features --profile`).

bf16 and fp16 pools run in one pass on our C kernel (csrc/max_pool.c, built on first use by
models/c_build.py, on CPUs with AVX-512BW: every CPU the packed bf16 path runs on). The separable passes
write and read back the whole tensor once per axis; the kernel takes each output row's maximum in a row
buffer that stays in L1. Measured on the same machine, alternating in one process: 0.49 against 1.31 ms
for the 3D stem's 2 clips, 1.49 against 3.69 ms for ResNet-152's 16 frames (16x64x112x199). fp32, and any
CPU or process where the kernel cannot be built, keep the separable passes.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import torch
from torch import nn

from models import c_build
from models.c_build import KernelUnavailable

SOURCE = Path(__file__).parent / "csrc" / "max_pool.c"
FLAGS = ("-O3", "-fPIC", "-shared", "-fopenmp", "-mavx512f", "-mavx512bw", "-mavx512vl")
_P, _I = ctypes.c_void_p, ctypes.c_int

_AS_INTEGER = {torch.bfloat16: torch.int16, torch.float16: torch.int16, torch.float32: torch.int32}


def _taps(a: torch.Tensor, dim: int, tap: int, count: int, stride: int) -> torch.Tensor:
    """a[..., tap + stride * j, ...] for j in range(count), along `dim`: a strided view."""
    shape, strides = list(a.shape), list(a.stride())
    shape[dim], strides[dim] = count, strides[dim] * stride
    return a.as_strided(shape, strides, a.storage_offset() + tap * a.stride(dim))


def pool_axis(a: torch.Tensor, dim: int, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """max over `kernel` taps along `dim` (stride, zero padding on each side with kernel = 2 * padding + 1),
    the padding never read: each output's taps outside the axis are left out of its max.

    Every output's centre tap is inside the axis; the other taps join it where they fall inside."""
    length = a.shape[dim]
    count = (length + 2 * padding - kernel) // stride + 1
    out_shape = list(a.shape)
    out_shape[dim] = count
    out = torch.empty(out_shape, dtype=a.dtype, device=a.device)
    centre = _taps(a, dim, 0, count, stride)  # tap offset 0, input stride * j: always inside the axis
    started = False
    for offset in [*range(padding, 0, -1), *range(-1, -padding - 1, -1)]:
        # the outputs j whose input index stride * j + offset lies in [0, length)
        first = 0 if offset >= 0 else (stride - 1 - offset) // stride
        last = min(count, (length - 1 - offset) // stride + 1)
        if last <= first:
            continue
        tap = _taps(a, dim, stride * first + offset, last - first, stride)
        inside = out.narrow(dim, first, last - first)
        if started:
            torch.maximum(inside, tap, out=inside)
            continue
        # The first tap joins the centre as the max is written: one pass less than copying it first. It
        # is the first tap after the centre (offset > 0), inside from output 0 on: only its end may fall
        # short (where an offset > 0 is never inside, the axis has one input and one output, no other
        # tap is inside and the centre is copied below).
        torch.maximum(centre.narrow(dim, first, last - first), tap, out=inside)
        if last < count:
            out.narrow(dim, last, count - last).copy_(centre.narrow(dim, last, count - last))
        started = True
    if not started:
        out.copy_(centre)
    return out


@functools.cache
def one_pass_kernel() -> ctypes.CDLL:
    """The loaded C kernel, built on first use; KernelUnavailable where it cannot run here (cached)."""
    from models.cpu_precision import has_avx512bw

    if not has_avx512bw():
        raise KernelUnavailable("no AVX-512BW on this CPU")
    lib = c_build.load(c_build.build(SOURCE, FLAGS))
    c_build.declare(lib, "pool_scratch_elements", ctypes.c_long, [_I] * 3)
    c_build.declare(lib, "pool_nonneg16", None, [_P] * 3 + [_I] * 15)
    return lib


@functools.cache
def one_pass_available() -> bool:
    """Whether bf16/fp16 pools run on the C kernel here; why not is logged once. Cached: the pool asks at
    every call, and a loader that failed would otherwise run the compiler again each time."""
    return c_build.runs_here(one_pass_kernel, "one-pass max pool kernel", "separable torch passes instead")


def _out_length(length: int, kernel: int, stride: int, padding: int) -> int:
    return (length + 2 * padding - kernel) // stride + 1


def one_pass_max_pool(x: torch.Tensor, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """nonnegative_max_pool of a bf16 or fp16 (N, C, ...) tensor on the C kernel (one_pass_kernel)."""
    if x.dtype not in (torch.bfloat16, torch.float16):
        raise ValueError(f"the one-pass kernel pools 16-bit floats, not {x.dtype}")
    if kernel != 2 * padding + 1 or stride < 1:
        raise ValueError(
            f"the one-pass kernel pools centred windows (kernel 2 * padding + 1), not {kernel}/{padding}"
        )
    lib = one_pass_kernel()
    spatial = x.dim() - 2
    if spatial == 3:
        n, c, t, h, w = x.shape
        kt, st, pt = kernel, stride, padding
    elif spatial == 2:
        (n, c, h, w), t = x.shape, 1
        kt, st, pt = 1, 1, 0
    else:
        raise ValueError(f"a 2D or 3D pool takes (N, C, H, W) or (N, C, T, H, W), not {tuple(x.shape)}")
    to, ho, wo = (
        _out_length(t, kt, st, pt),
        _out_length(h, kernel, stride, padding),
        _out_length(w, kernel, stride, padding),
    )
    rows = x.permute(0, *range(2, x.dim()), 1).contiguous()  # a view of channels-last memory
    out = torch.empty(n, *((to,) if spatial == 3 else ()), ho, wo, c, dtype=x.dtype)
    if out.numel():
        threads = torch.get_num_threads()
        scratch = torch.empty(lib.pool_scratch_elements(w, c, threads), dtype=torch.int16)
        lib.pool_nonneg16(
            rows.data_ptr(), out.data_ptr(), scratch.data_ptr(), n, t, h, w, c, kt, st, pt, kernel, stride,
            padding, to, ho, wo, threads,
        )  # fmt: skip
    return out.permute(0, x.dim() - 1, *range(1, x.dim() - 1))


def nonnegative_max_pool(
    x: torch.Tensor, kernel: int, stride: int, padding: int, one_pass: bool | None = None
) -> torch.Tensor:
    """max_pool{2,3}d(x, kernel, stride, padding) over every spatial axis of a non-negative (N, C, ...)
    tensor in channels-last memory (the module docstring); the result is channels-last too. `one_pass`:
    on the C kernel (bf16 and fp16 only); default: where it runs here."""
    if one_pass is None:
        one_pass = x.dtype in (torch.bfloat16, torch.float16) and x.dim() in (4, 5) and one_pass_available()
    if one_pass:
        return one_pass_max_pool(x, kernel, stride, padding)
    spatial = x.dim() - 2
    as_int = _AS_INTEGER[x.dtype]
    order = (0, *range(2, x.dim()), 1)  # N, spatial..., C: channels-last memory as a contiguous view
    a = x.permute(*order).view(as_int)
    for dim in range(1, 1 + spatial):  # the outermost spatial axis first (see the module docstring)
        a = pool_axis(a, dim, kernel, stride, padding)
    back = (0, spatial + 1, *range(1, spatial + 1))
    return a.view(x.dtype).permute(*back)


def pool_geometry(pool: nn.Module) -> tuple[int, int, int] | None:
    """(kernel, stride, padding) of a MaxPool2d/3d nonnegative_max_pool computes: one cubic kernel of
    2 * padding + 1, no dilation, floor mode, no indices; None for any other module."""
    if not isinstance(pool, (nn.MaxPool2d, nn.MaxPool3d)) or pool.ceil_mode or pool.return_indices:
        return None
    dims = 2 if isinstance(pool, nn.MaxPool2d) else 3

    def one(value: object) -> int | None:
        values = value if isinstance(value, tuple) else (value,) * dims
        return values[0] if len(set(values)) == 1 and isinstance(values[0], int) else None

    kernel, stride, padding, dilation = (
        one(pool.kernel_size), one(pool.stride), one(pool.padding), one(pool.dilation)
    )  # fmt: skip
    if kernel is None or stride is None or padding is None or dilation != 1:
        return None
    return (kernel, stride, padding) if kernel == 2 * padding + 1 and stride >= 1 else None


def poolable(pool: nn.Module) -> bool:
    """Whether nonnegative_max_pool computes `pool` (pool_geometry)."""
    return pool_geometry(pool) is not None


class NonNegativeMaxPool(nn.Module):
    """A MaxPool2d/3d (`poolable`) for inputs known to be >= 0: the packed stems' fused-ReLU outputs.
    Inputs of another dtype than bf16, fp16 or fp32, or not channels-last, go to ATen's pool."""

    def __init__(self, pool: nn.Module) -> None:
        super().__init__()
        geometry = pool_geometry(pool)
        assert geometry is not None
        self.pool = pool
        self.kernel, self.stride, self.padding = geometry

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        memory = torch.channels_last_3d if x.dim() == 5 else torch.channels_last
        if x.dtype not in _AS_INTEGER or not x.is_contiguous(memory_format=memory):
            return self.pool(x)
        return nonnegative_max_pool(x, self.kernel, self.stride, self.padding)
