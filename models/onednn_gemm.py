"""fp32 GEMMs on oneDNN where MKL's are slower: a training step's matmuls at the CPU's fp32 rate.

torch.mm in fp32 runs on MKL, and on AMD CPUs MKL takes its generic path (tasks/bench/ceiling.py). On a
2-core Zen 5 with full-width AVX-512 that path reached 192-204 GFLOP/s on the GEMMs of a step at d=4096,
batch 2048, where oneDNN ran the same products as 1x1 convolutions at 297-377 GFLOP/s (operand copies
included), so `howto bench train` measured fp32 at 52% of the fp32 ceiling. Our encoders already run on
oneDNN; under `OneDnnFp32Gemms` a step's large fp32 GEMMs go there too: the forward's `addmm`, and the
`mm`s autograd's backward formulas issue for the input and weight gradients (a dispatch mode sees those,
as models/gemm_layout.py explains).

oneDNN's 1x1 convolution reads the first operand row-major and the second column-major; an operand in the
other layout is copied first (a 2048 x 4096 fp32 copy is a few ms beside a 90-180 ms GEMM). It also
reorders the weights on every call, which costs as much as a GEMM of few rows: with 64 rows against a
4096 x 4096 weight it ran at 65 GFLOP/s where MKL ran 111, so GEMMs with fewer than MIN_ROWS rows stay on
MKL. So do GEMMs under MIN_MACS multiply-adds (about 5 ms on MKL): there the gain is small beside the
step's other work, and it changes the rounding of small runs for little. The demo world's training (d=256,
TVTS; its GEMMs 0.03-0.47 G multiply-adds) took 31.2 s with them routed against 27.9 s on MKL, and its
held-out recall moved by up to 3 points with the rounding; above the line, a step at d=1024, batch 2048
took 351-355 against 545-550 ms, and at d=4096 2.6-2.9 against 4.4-4.5 s.

Whether oneDNN pays is measured, not assumed: on Intel CPUs MKL is the faster library, and on an
AVX2-only EPYC the two were within 15% of each other. The verdict is kept per machine beside the CPU
precision's (models/cpu_precision.py).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from models import cpu_precision
from models.gemm_rate import gemm_rate
from models.packed import onednn_available

log = logging.getLogger(__name__)

# Below this speed-up the two are within a shared machine's noise, and MKL keeps the GEMMs.
ONEDNN_MIN_SPEEDUP = 1.15
MIN_ROWS = 256  # fewer rows: oneDNN's per-call weight reorder outweighs its faster kernel
MIN_MACS = 1 << 29  # about 1.1 GFLOP: the demo world's GEMMs (at most 0.47 G multiply-adds) stay on MKL
GEMM_SIDE = 1024
_CACHE_PREFIX = "fp32 GEMM backend|"
_CPU = torch.device("cpu")
_aten = torch.ops.aten


def onednn_mm(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """a @ b (+ bias, a vector of b's columns) as a oneDNN 1x1 convolution: a's m rows as m pixels of k
    channels, b's n columns as n filters. Returns a contiguous (m, n) tensor."""
    (m, k), n = a.shape, b.shape[1]
    rows = a if a.is_contiguous() else a.contiguous()
    filters = b.t()
    filters = filters if filters.is_contiguous() else filters.contiguous()
    # The same memory seen as NHWC pixels (1, k, 1, m) and as (n, k, 1, 1) filters: views, no copy.
    pixels = rows.as_strided((1, k, 1, m), (m * k, 1, m * k, k))
    weight = filters.as_strided((n, k, 1, 1), (k, 1, k, k))
    out = F.conv2d(pixels, weight, bias)
    # channels-last output is (m, n) row-major already; reshape copies only if oneDNN chose otherwise
    return out.permute(0, 2, 3, 1).reshape(m, n)


def onednn_addmm(
    bias: torch.Tensor, a: torch.Tensor, b: torch.Tensor, beta: float = 1, alpha: float = 1
) -> torch.Tensor:
    """beta * bias + alpha * (a @ b), as torch.addmm, with the product on oneDNN. A bias vector with both
    scales 1 (a Linear layer's forward) is added by the convolution itself."""
    if beta == 1 and alpha == 1 and bias.dim() == 1 and bias.shape[0] == b.shape[1]:
        return onednn_mm(a, b, bias.contiguous())
    out = onednn_mm(a, b)
    if alpha != 1:
        out.mul_(alpha)
    if beta != 0:  # as addmm: with beta 0 the bias is not read (a NaN in it does not spread)
        out.add_(bias, alpha=beta)
    return out


def routes(a: torch.Tensor, b: torch.Tensor, min_rows: int = MIN_ROWS, min_macs: int = MIN_MACS) -> bool:
    """Whether a GEMM of these operands goes to oneDNN under the mode: fp32 on a CPU, large enough."""
    if (
        a.dtype != torch.float32
        or b.dtype != torch.float32
        or a.device.type != "cpu"
        or b.device.type != "cpu"
    ):
        return False
    if a.dim() != 2 or b.dim() != 2:
        return False
    (m, k), n = a.shape, b.shape[1]
    return m >= min_rows and m * k * n >= min_macs


class OneDnnFp32Gemms(TorchDispatchMode):
    """Within this context, large fp32 CPU `mm`s and `addmm`s run on oneDNN (module docstring), those of
    autograd's backward included. `routed` counts them."""

    def __init__(self, min_rows: int = MIN_ROWS, min_macs: int = MIN_MACS) -> None:
        super().__init__()
        self.min_rows = min_rows
        self.min_macs = min_macs
        self.routed = 0

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if func is _aten.mm.default and routes(*args, self.min_rows, self.min_macs):
            self.routed += 1
            return onednn_mm(*args)
        if func is _aten.addmm.default and routes(args[1], args[2], self.min_rows, self.min_macs):
            self.routed += 1
            return onednn_addmm(*args, **kwargs)
        return func(*args, **kwargs)


@dataclass(frozen=True)
class Fp32Gemm:
    """fp32 GEMM rates of MKL (torch.mm) and oneDNN measured here; zeros where oneDNN is absent."""

    mkl_gflops: float = 0.0
    onednn_gflops: float = 0.0

    @property
    def speedup(self) -> float | None:
        """oneDNN's rate over MKL's; None where not measured."""
        if self.mkl_gflops <= 0 or self.onednn_gflops <= 0:
            return None
        return self.onednn_gflops / self.mkl_gflops

    @property
    def onednn_pays(self) -> bool:
        return (self.speedup or 0.0) >= ONEDNN_MIN_SPEEDUP

    def describe(self) -> str:
        if self.speedup is None:
            return "fp32 GEMMs on torch.mm (no oneDNN here)"
        chosen = "oneDNN" if self.onednn_pays else "torch.mm"
        return (
            f"fp32 GEMMs on {chosen}: oneDNN {self.speedup:.2f}x torch.mm here, {self.onednn_gflops:.0f} vs "
            f"{self.mkl_gflops:.0f} GFLOP/s at {GEMM_SIDE}^3"
            + ("" if self.onednn_pays else f" (oneDNN from {ONEDNN_MIN_SPEEDUP:.2f}x)")
        )


def measure_fp32_gemm(rounds: int = 3, round_s: float = 0.05) -> Fp32Gemm:
    """Time a Linear-shaped GEMM (second operand a transposed weight) on both libraries, interleaved, each
    library's best round kept: a burst of other work on a shared machine slows one round, not one side."""
    if not onednn_available():
        return Fp32Gemm()
    flop = 2.0 * GEMM_SIDE**3
    a = torch.randn(GEMM_SIDE, GEMM_SIDE)
    b = torch.randn(GEMM_SIDE, GEMM_SIDE).t()
    runs = {"mkl": lambda: torch.mm(a, b), "onednn": lambda: onednn_mm(a, b)}
    best = dict.fromkeys(runs, 0.0)
    with torch.inference_mode():
        for _ in range(rounds):
            for name, run in runs.items():
                best[name] = max(best[name], gemm_rate(run, flop, round_s, _CPU))
    return Fp32Gemm(mkl_gflops=best["mkl"], onednn_gflops=best["onednn"])


def _from_entry(entry: dict[str, Any] | None) -> Fp32Gemm | None:
    """A cached verdict; None where there is none or it is damaged (measured again and rewritten)."""
    if entry is None:
        return None
    try:
        return Fp32Gemm(float(entry["mkl_gflops"]), float(entry["onednn_gflops"]))
    except (KeyError, TypeError, ValueError):
        return None


@functools.cache
def fp32_gemm() -> Fp32Gemm:
    """This machine's verdict: measured once (about 0.3 s) and kept in the user cache beside the CPU
    precision's, so every process of a machine routes its GEMMs alike."""
    key = _CACHE_PREFIX + cpu_precision.machine_key()
    verdict = _from_entry(cpu_precision.cached_entry(key))
    if verdict is not None:
        return verdict
    verdict = measure_fp32_gemm()
    cpu_precision.remember_entry(
        key, {"mkl_gflops": verdict.mkl_gflops, "onednn_gflops": verdict.onednn_gflops}
    )
    log.info("%s (measured; kept in %s)", verdict.describe(), cpu_precision.cache_path())
    return verdict
