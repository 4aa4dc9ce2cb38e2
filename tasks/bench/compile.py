"""The alternatives to the packed path, measured side by side: eager with autocast (the path before issue
20), torch.jit.freeze + optimize_for_inference, and torch.compile with inductor's freezing pass; each with
its preparation (trace / compile) time and its share of the ceiling. Slow: minutes of compiling per model."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import numpy as np
import torch

from models.encoders import Runtime, pick_runtime, prepare
from tasks.bench.features import SHORT, bench_input, measure_share


def _eager(net: torch.nn.Module, rt: Runtime) -> torch.nn.Module:
    # Weights converted once, channels_last, BatchNorm unfolded: the input of jit and compile.
    return prepare(copy.deepcopy(net), pick_runtime("cpu", rt.precision, packed=False))


def _autocast(net: torch.nn.Module, rt: Runtime) -> Callable[[torch.Tensor], torch.Tensor]:
    model = prepare(copy.deepcopy(net), pick_runtime("cpu", "fp32", packed=False))

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=rt.dtype, enabled=rt.precision != "fp32"):
            return model(x)

    return run


def _jit(net: torch.nn.Module, rt: Runtime, example: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    with torch.no_grad():
        traced = torch.jit.trace(_eager(net, rt), example[:1])
        return torch.jit.optimize_for_inference(torch.jit.freeze(traced))  # type: ignore[no-any-return]


def _compiled(net: torch.nn.Module, rt: Runtime) -> Callable[[torch.Tensor], torch.Tensor]:
    import torch._inductor.config as inductor

    inductor.freezing = True  # fold BatchNorm, prepack weights for oneDNN, fuse conv + ReLU / add
    return torch.compile(_eager(net, rt), dynamic=False)  # type: ignore[return-value]


def compare_paths(net: torch.nn.Module, model: str, rt: Runtime, batch: int, rounds: int) -> list[str]:
    """One line per path: preparation seconds (including the first two batches) and share of the ceiling."""
    x, gflop = bench_input(model, batch)
    example = torch.from_numpy(x)
    builders: dict[str, Callable[[], Callable[[torch.Tensor], torch.Tensor]]] = {
        "packed (ours)": lambda: prepare(net, rt),
        "eager autocast": lambda: _autocast(net, rt),
        "jit.freeze": lambda: _jit(net, rt, example),
        "torch.compile": lambda: _compiled(net, rt),
    }
    lines = []
    for name, build in builders.items():
        started = time.perf_counter()
        run = build()

        def batch_of(b: np.ndarray, run: Callable[[torch.Tensor], torch.Tensor] = run) -> object:
            with torch.no_grad():
                return run(torch.from_numpy(b))

        batch_of(x)  # compiling, jit's profiling runs and weight packing happen in the first calls
        batch_of(x)
        prep = time.perf_counter() - started
        gflops, ceiling, share = measure_share(batch_of, x, gflop, rt.dtype, rounds)
        lines.append(
            f"{SHORT[model]} {rt.precision} {name:<15} batch {batch}: {gflops:6.1f} GFLOP/s, ceiling "
            f"{ceiling:6.1f} -> {100 * share:3.0f}%; preparation incl. first two batches {prep:6.1f} s"
        )
    return lines
