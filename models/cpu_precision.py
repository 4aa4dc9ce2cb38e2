"""Whether bf16 pays on this CPU: measured, not read off the CPU flags.

avx512_bf16 says that a CPU *has* bf16 dot products, not that they are faster than fp32. On an AMD Zen 4
oneDNN's bf16 GEMM runs at about twice its fp32 rate, and with AMX at several times. On an Intel Xeon with
avx512_bf16 and avx512_fp16 but no AMX in sight (a virtual machine that does not pass AMX through) the
same bf16 GEMM ran at 0.55x fp32 (146 vs 265 GFLOP/s), and the encoders in bf16 at half the fp32 path's
speed. So "auto" takes bf16 on a CPU only where a short GEMM in both precisions, run now, says it is
clearly faster.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import torch

from models.gemm_rate import gemm_rate, onednn_gemm
from models.packed import onednn_available

log = logging.getLogger(__name__)

# bf16 rounds every activation to 8 bits of mantissa: worth it only for a clear gain, and the margin keeps
# a noisy measurement on a shared machine from flipping the choice between runs where the two are close.
BF16_MIN_SPEEDUP = 1.2
GEMM_SIDE = 1024  # 2.1 GFLOP a run: 5-20 ms on two cores, long enough to time, short enough to repeat
_CPU = torch.device("cpu")


def cpu_bf16_supported() -> bool:
    """True when oneDNN has native bf16 kernels on this CPU (avx512_bf16 / AMX); emulated bf16 is slower."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@dataclass(frozen=True)
class CpuBf16:
    """Native bf16 or not, and when native, oneDNN's GEMM rate in each precision measured here."""

    native: bool
    fp32_gflops: float = 0.0
    bf16_gflops: float = 0.0

    @property
    def speedup(self) -> float | None:
        """bf16's rate over fp32's; None where bf16 is not native (and was not measured)."""
        if not self.native or self.fp32_gflops <= 0:
            return None
        return self.bf16_gflops / self.fp32_gflops

    @property
    def pays(self) -> bool:
        return (self.speedup or 0.0) >= BF16_MIN_SPEEDUP

    @property
    def precision(self) -> str:
        """What "auto" runs on this CPU."""
        return "bf16" if self.pays else "fp32"

    def describe(self) -> str:
        if self.speedup is None:
            return "no native bf16 on this CPU: auto is fp32"
        return (
            f"bf16 GEMM {self.speedup:.2f}x fp32 here, {self.bf16_gflops:.0f} vs {self.fp32_gflops:.0f} "
            f"GFLOP/s on oneDNN {GEMM_SIDE}^3: auto is {self.precision}"
            + ("" if self.pays else f" (bf16 from {BF16_MIN_SPEEDUP:.1f}x)")
        )


def measure_cpu_bf16(rounds: int = 3, round_s: float = 0.05) -> CpuBf16:
    """Time the same GEMM in fp32 and bf16, interleaved, and keep each precision's best round: a burst of
    other work on a shared machine then slows one round, not one precision."""
    if not cpu_bf16_supported() or not onednn_available():
        return CpuBf16(native=False)
    flop = 2.0 * GEMM_SIDE**3
    runs = {}
    with torch.inference_mode():
        for dtype in (torch.float32, torch.bfloat16):
            a = torch.randn(GEMM_SIDE, GEMM_SIDE, dtype=dtype)
            runs[dtype] = onednn_gemm(a, torch.randn(GEMM_SIDE, GEMM_SIDE, dtype=dtype))
        best = dict.fromkeys(runs, 0.0)
        for _ in range(rounds):
            for dtype, run in runs.items():
                best[dtype] = max(best[dtype], gemm_rate(run, flop, round_s, _CPU))
    return CpuBf16(native=True, fp32_gflops=best[torch.float32], bf16_gflops=best[torch.bfloat16])


@functools.cache
def cpu_bf16() -> CpuBf16:
    """This process's verdict, measured once (about 0.3 s) the first time "auto" is resolved on a CPU."""
    verdict = measure_cpu_bf16()
    log.info("CPU precision: %s", verdict.describe())
    return verdict
