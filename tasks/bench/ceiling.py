"""The compute ceiling the benches hold our paths to: the fastest GEMM this machine's torch can run in a
precision, measured now.

One library is not enough on a CPU. torch.mm in fp32 goes to MKL, which on AMD CPUs takes a generic path:
on a Zen 4 it reaches about 186 GFLOP/s where oneDNN (the library our encoders run on) reaches about 218
on the same GEMM. Held to MKL alone, a oneDNN model looked like 100%+ of a ceiling it was beating. So on
a CPU with oneDNN the ceiling is the best of torch.mm and the same GEMM as a oneDNN 1x1 convolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from models.encoders import onednn_available
from models.gemm_rate import gemm_rate as _rate
from models.gemm_rate import onednn_gemm

MM = "torch.mm"
ONEDNN = "oneDNN 1x1 conv"


@dataclass(frozen=True)
class Ceiling:
    """GFLOP/s of each GEMM backend measured; the ceiling is the best of them."""

    backends: dict[str, float]

    @property
    def gflops(self) -> float:
        return max(self.backends.values())

    def describe(self) -> str:
        return ", ".join(f"{name} {rate:.1f}" for name, rate in self.backends.items())


def gemm_ceiling(
    m: int, k: int, n: int, dtype: torch.dtype, device: torch.device | str = "cpu", seconds: float = 1.0
) -> Ceiling:
    """The (m x k) @ (k x n) GEMM in `dtype` on every backend there is, `seconds` shared between them."""
    dev = torch.device(device)
    flop = 2.0 * m * k * n
    a = torch.randn(m, k, dtype=dtype, device=dev)
    b = torch.randn(k, n, dtype=dtype, device=dev)
    with torch.inference_mode():
        if dev.type != "cpu" or not onednn_available():
            return Ceiling({MM: _rate(lambda: torch.mm(a, b), flop, seconds, dev)})
        return Ceiling(
            {
                MM: _rate(lambda: torch.mm(a, b), flop, seconds / 2, dev),
                ONEDNN: _rate(onednn_gemm(a, b), flop, seconds / 2, dev),
            }
        )
