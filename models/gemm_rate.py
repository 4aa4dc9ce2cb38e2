"""GEMM throughput measured now: the yardstick of the benches' ceilings and of the CPU precision choice."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def gemm_rate(run: Callable[[], object], flop: float, seconds: float, device: torch.device) -> float:
    """GFLOP/s of repeated `run()` for about `seconds` (at least one run), after one untimed run."""
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    run()
    sync()
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or runs < 1:
        run()
        runs += 1
        if device.type == "cuda" and runs % 8 == 0:
            sync()  # the clock must see finished work, not queued launches
    sync()
    return flop * runs / (time.perf_counter() - start) / 1e9


def onednn_gemm(a: torch.Tensor, b: torch.Tensor) -> Callable[[], torch.Tensor]:
    """a @ b as oneDNN runs it: a's m rows as m pixels of k channels through a 1x1 convolution whose
    weights are b, to n channels. Returns the (1, n, 1, m) output; `.view(n, m).t()` is a @ b."""
    (m, k), n = a.shape, b.shape[1]
    pixels = a.t().reshape(1, k, 1, m).contiguous(memory_format=torch.channels_last)
    weight = b.t().reshape(n, k, 1, 1).contiguous(memory_format=torch.channels_last)
    return lambda: torch.nn.functional.conv2d(pixels, weight)
