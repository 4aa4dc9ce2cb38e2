"""Row-major first operands for bf16 GEMMs on AMX, in training's forward and backward alike.

A training step's weight gradients are dW = g^T @ x: both operands keep the batch as their outer
dimension, so the GEMM's first operand reaches oneDNN transposed (column-major), and the same holds for
the similarity's gradient with respect to the videos (G^T @ t). oneDNN's AMX matmul runs that layout at
less than half its rate: on 2 Xeon cores, (4096 x 2048) @ (2048 x 4096) in bf16 took 85 ms with the
first operand transposed and 44 ms row-major, and torch's own transposing copy of the operand took 16 ms
where copying it in blocks of 64 rows takes 4.4 ms. So under `RowMajorGemms` every large bf16 GEMM whose
first operand is column-major gets a blocked row-major copy of it first: the same products, summed in the
kernel's order for that layout. Without AMX (oneDNN capped to AVX512_CORE_BF16 on the same machine) both
layouts ran at the same speed, and in fp32 the copy did not pay, so the trainer enters the mode only for
bf16 steps where AMX is in use (models/cpu_precision.py amx_in_use).

The copy itself is a compiled kernel (models/cpu_kernels.py): Inductor transposes the tensor in 32 x 32
tiles held in vector registers. Copying (4096 x 2048) bf16 took 1.7 ms compiled for its sizes, 2.6-3.2 ms
compiled for any size, and 4.8 ms as torch's copies of 64-row blocks (a step makes five such copies; in a
step their sources come from memory rather than cache, and a whole bf16 step at d=4096, batch 2048 took
559-630 against 565-646 ms, 6-16 ms less in three runs of alternating steps).
Where the CPU has AVX-512BW (every CPU with AMX) the copy is our C kernel instead (csrc/transpose16.c,
built on first use by models/c_build.py): 32 x 32 tiles transposed in registers and written with
streaming stores, which skip reading each destination line before writing it. (2048 x 4096) bf16 from
memory on 2 Xeon cores, medians of 15: 1.6 ms against 5.6 ms compiled by Inductor for its sizes. A whole
bf16 step at d=4096, batch 2048, alternating in one process: 465, 472 and 458 against 477, 490 and 475
ms (medians of 8, 16 and 18 steps, the last with the order rotating); the same C kernel with plain
stores, 5.1 ms a copy, gained nothing in a step (476, 486 and 474 ms). The compiled kernel stays for CPUs
or processes where the C kernel cannot be built.
A run's operands take a few shapes (its batch, a shorter last batch, the similarities), so each of the
first STATIC_SHAPES shapes gets a kernel compiled for its sizes (about a second each, once, then from
Inductor's disk cache) and any later shape the one compiled for all sizes. Where compiling fails, the
block copy runs.

A dispatch mode rather than a custom Linear: autograd's own backward formulas issue these GEMMs, and a
mode sees them there as well, for every module the model is built from.
"""

from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from models import c_build
from models.c_build import KernelUnavailable
from models.cpu_kernels import Kernel, compiled_kernel, run_kernel

SOURCE = Path(__file__).parent / "csrc" / "transpose16.c"
FLAGS = ("-O3", "-fPIC", "-shared", "-fopenmp", "-mavx512f", "-mavx512bw")

BLOCK_ROWS = 64  # 32-256 all ran within 25% of each other; 64 was at the best
# Below about a million elements the GEMM is short and the copy and Python call would not pay.
MIN_ELEMENTS = 1 << 20
STATIC_SHAPES = 8  # shapes that get a kernel compiled for their sizes; later ones share one for any size

_aten = torch.ops.aten
# The GEMM ops and the position of their first operand.
FIRST_OPERAND = {_aten.mm.default: 0, _aten.addmm.default: 1}


def column_major(a: torch.Tensor) -> bool:
    """True for a 2D tensor laid out column by column (a transposed view of a contiguous one)."""
    return (
        a.dim() == 2 and a.shape[0] > 1 and a.shape[1] > 1 and a.stride(0) == 1 and a.stride(1) == a.shape[0]
    )


def _transposed(source: torch.Tensor) -> torch.Tensor:
    return source.t().contiguous()


@dataclass
class _Compiled:
    sized: set[tuple[int, int]] = field(default_factory=set)  # shapes with a kernel for their sizes
    failed: bool = False  # a compile failed (no compiler): the block copy from then on, without retrying


_COMPILED = _Compiled()


def row_major_copies_failed() -> bool:
    """Whether the compiled copy failed to build here (the block copy runs instead)."""
    return _COMPILED.failed


def transpose_kernel(shape: tuple[int, int]) -> Kernel | None:
    """The compiled transposing copy for a bf16 source of `shape`: compiled for those sizes while fewer
    than STATIC_SHAPES shapes have one, else the kernel for any size; None where compiling failed."""
    if _COMPILED.failed:
        return None
    if shape in _COMPILED.sized or len(_COMPILED.sized) < STATIC_SHAPES:
        kernel = compiled_kernel(
            f"row-major copy {shape[0]}x{shape[1]}",
            _transposed,
            lambda k: k(torch.zeros(shape, dtype=torch.bfloat16)),
            dynamic=False,
        )
        if kernel is not None:
            _COMPILED.sized.add(shape)
    else:
        kernel = compiled_kernel(
            "row-major copy", _transposed, lambda k: k(torch.zeros(1024, 2048, dtype=torch.bfloat16))
        )
    _COMPILED.failed = kernel is None
    return kernel


@functools.cache
def transpose_library() -> ctypes.CDLL:
    """The loaded C transpose, built on first use; KernelUnavailable where it cannot run here (cached)."""
    from models.cpu_precision import has_avx512bw

    if not has_avx512bw():
        raise KernelUnavailable("no AVX-512BW on this CPU")
    lib = c_build.load(c_build.build(SOURCE, FLAGS))
    c_build.declare(
        lib,
        "transpose16",
        None,
        [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long, ctypes.c_long, ctypes.c_int],
    )
    return lib


@functools.cache
def c_transpose_available() -> bool:
    """Whether bf16 row-major copies run on the C kernel here; why not is logged once."""
    return c_build.runs_here(transpose_library, "C transpose kernel", "the compiled Inductor copy instead")


def c_transposed(source: torch.Tensor) -> torch.Tensor:
    """source.t() as a new contiguous tensor, by the C kernel: a contiguous 2D CPU tensor of 16-bit values."""
    if (
        source.dim() != 2
        or source.element_size() != 2
        or not source.is_contiguous()
        or source.device.type != "cpu"
    ):
        raise ValueError(
            "the C transpose copies contiguous 2D 16-bit CPU tensors, "
            f"not {source.dtype} {tuple(source.shape)}"
        )
    rows, cols = source.shape
    out = torch.empty((cols, rows), dtype=source.dtype)
    transpose_library().transpose16(source.data_ptr(), out.data_ptr(), rows, cols, torch.get_num_threads())
    return out


def row_major_copy(a: torch.Tensor, block_rows: int = BLOCK_ROWS) -> torch.Tensor:
    """A contiguous copy of a column-major 2D tensor: for bf16 on a CPU by the C kernel, else the compiled
    kernel (module docstring), else (and where neither builds) transposed in blocks of its source's
    rows."""
    source = a.t()  # contiguous: source[j] is column j of a
    compiled = a.dtype == torch.bfloat16 and a.device.type == "cpu"
    if compiled and c_transpose_available():
        return c_transposed(source)
    kernel = transpose_kernel((source.shape[0], source.shape[1])) if compiled else None
    if kernel is not None:
        out: torch.Tensor = run_kernel(kernel, source)
        return out
    return block_copy(a, block_rows)


def block_copy(a: torch.Tensor, block_rows: int = BLOCK_ROWS) -> torch.Tensor:
    """A contiguous copy of a column-major 2D tensor, transposed in blocks of its source's rows."""
    source = a.t()
    out = torch.empty(a.shape, dtype=a.dtype, device=a.device)
    for start in range(0, source.shape[0], block_rows):
        out[:, start : start + block_rows].copy_(source[start : start + block_rows].t())
    return out


def needs_row_major(a: torch.Tensor, min_elements: int = MIN_ELEMENTS) -> bool:
    """Whether a GEMM's first operand should be copied row-major first: a large column-major bf16 CPU
    tensor."""
    return (
        a.dtype == torch.bfloat16 and a.device.type == "cpu" and a.numel() >= min_elements and column_major(a)
    )


class RowMajorGemms(TorchDispatchMode):
    """Within this context, large bf16 CPU GEMMs get their first operand row-major (module docstring).
    `copies` counts the operands copied."""

    def __init__(self, min_elements: int = MIN_ELEMENTS) -> None:
        super().__init__()
        self.min_elements = min_elements
        self.copies = 0

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        position = FIRST_OPERAND.get(func)
        if position is not None and needs_row_major(args[position], self.min_elements):
            args = (*args[:position], row_major_copy(args[position]), *args[position + 1 :])
            self.copies += 1
        return func(*args, **(kwargs or {}))
