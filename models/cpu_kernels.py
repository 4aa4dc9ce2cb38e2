"""Elementwise CPU kernels of a bf16 training step, each compiled once by torch.compile into one loop.

On a 2-core machine a bf16 step's elementwise work is bound by memory: every eager op is a pass that
reads and writes (N x d) tensors. Compiled, the gated units' sigmoid-and-L2 tail makes two passes forward
and two backward instead of six, Adam's update for a weight one instead of four, and the max-margin loss
reads the bf16 scores once for its loss and gradient. The compile happens
once per process at first use (seconds, cached on disk by Inductor across processes), shapes dynamic so
one compile serves every batch size and width. Where compiling fails (no C++ compiler) each caller runs
its eager form of the same formulas; the failure is logged once.

The kernels run with the Python dispatch modes of the caller switched off: a mode (the row-major GEMM
operands of models/gemm_layout.py) would otherwise see the compiled region's ops one by one. Measured in
one process, alternating steps at d=4096, batch 2048 on 2 Xeon cores with AMX: the step with the
compiled tail took 0.537 against 0.571 s, and under the mode without switching it off 0.697 against 0.620.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils._python_dispatch import _disable_current_modes

log = logging.getLogger(__name__)

Kernel = Callable[..., Any]

# Inductor decides a loop's threads from the sizes of the first call that compiles it, and its on-disk
# cache keeps that decision for every later process and size: a kernel first compiled on a small tensor
# ran on one core ever after (an Adam update over 16.8M weights: 23.9 against 12.3 ms on 2 cores). With
# dynamic_threads every kernel gets a parallel loop and OpenMP splits the work by the real size; the
# option is part of the cache key, so no kernel compiled without it is reused. The probes are also sized
# like real work, for the sizes' other decisions.
PARALLEL: dict[str, str | int | bool | Callable[..., Any]] = {"cpp.dynamic_threads": True}

# Inductor warns when one loop reads float16 and writes bf16 (the standardisation of models/embedding.py:
# stored float16 in, bf16 out), while it computes such a loop in float32 anyway: nothing to act on.
warnings.filterwarnings("ignore", message="bf16 and fp16 are mixed in the scheduler node")

_compiled: dict[str, Kernel] = {}
_failed: dict[str, str] = {}


@contextlib.contextmanager
def _kernel_context() -> Iterator[None]:
    """What a kernel runs under, its probe and its calls alike, so one compile serves both (each of these
    is a guard of the compiled code): no dispatch modes, no autocast (the kernels name their dtypes), no
    autograd (callers are autograd's own forward and backward, or an optimiser step)."""
    with _disable_current_modes(), torch.autocast("cpu", enabled=False), torch.no_grad():
        yield


@contextlib.contextmanager
def _quiet_inductor() -> Iterator[None]:
    # Inductor looks for CUDA while it builds a CPU kernel and warns on a machine without it: not ours.
    quiet = logging.getLogger("torch.utils.cpp_extension")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        yield
    finally:
        quiet.setLevel(level)


def compiled_kernel(
    name: str, fn: Kernel, probe: Callable[[Kernel], object], dynamic: bool = True
) -> Kernel | None:
    """`fn` compiled (fullgraph, dynamic shapes), or None where compiling failed. `probe` calls the
    compiled function once on tensors like the real ones (same ranks and dtypes, sizes of real work), so
    a compiler failure shows here and the calls through run_kernel reuse that compile. `dynamic` False:
    compiled for the probe's sizes only (a caller that keeps one kernel per shape, models/gemm_layout.py);
    other sizes would each compile again."""
    if name in _compiled:
        return _compiled[name]
    if name in _failed:
        return None
    kernel = torch.compile(fn, fullgraph=True, dynamic=dynamic, options=PARALLEL)
    try:
        with _quiet_inductor(), _kernel_context():
            probe(kernel)
    except Exception as error:  # noqa: BLE001 - any compiler failure means the eager form
        _failed[name] = str(error)
        log.warning("%s: torch.compile failed (%s); running the eager form of the same formulas", name, error)
        return None
    _compiled[name] = kernel
    return kernel


def run_kernel(kernel: Kernel, *args: Any) -> Any:
    """Call a compiled kernel as it was probed (_kernel_context), on detached tensors (requires_grad is a
    guard too)."""
    with _kernel_context():
        return kernel(*(a.detach() if isinstance(a, torch.Tensor) else a for a in args))


def compile_failure(name: str) -> str | None:
    """Why `name` runs eager, or None if it compiled (or was never asked for)."""
    return _failed.get(name)
