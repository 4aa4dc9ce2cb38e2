"""The GPU form of the encoders: BatchNorm folded into the convolutions by torch.fx, then torch.compile.

On CUDA "reduce-overhead" replays one CUDA graph per input shape, so the extractor pads every batch to its
fixed size (tasks/features/batcher.py), and a worker process compiles each model once per frame size (its
prepared encoders are kept between shards: tasks/features/encoder_pool.py). Compiling can fail
on a machine whose toolchain inductor does not support; the encoder then says why once and runs eager, since
a slower shard beats a failed one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.fx.experimental.optimization import fuse

log = logging.getLogger(__name__)

# 2D frames keep their aspect ratio, so the frame shapes of a crawl vary (640x360 -> 224x398, 426x240 ->
# 224x397, 4:3 -> 224x298, portrait ...), and each shape is one compile and one CUDA graph. Past this many,
# new shapes run eager: a few minutes of compiling per shape stop paying off.
MAX_COMPILED_SHAPES = 16


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A traced copy of an eval-mode encoder with every conv -> BatchNorm pair folded into one conv."""
    folded = fuse(model.eval())  # torch.fx: Conv2d/3d followed by BatchNorm2d/3d, fp32 arithmetic
    left = [m for m in folded.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if left:
        raise ValueError(f"{len(left)} BatchNorm layers do not follow a convolution and cannot be folded")
    return folded


class CompiledEncoder(nn.Module):
    """torch.compile'd encoder that falls back to the eager module, once and for good, if compiling fails."""

    def __init__(
        self,
        model: nn.Module,
        cuda_graphs: bool,
        compiler: Callable[..., Any] = torch.compile,
        backend: str = "inductor",
        max_shapes: int = MAX_COMPILED_SHAPES,
    ) -> None:
        super().__init__()
        self.eager = model
        self.cuda_graphs = cuda_graphs
        self.max_shapes = max_shapes
        self.shapes: set[tuple[int, ...]] = set()  # the shapes compiled so far
        self.eager_shapes: set[tuple[int, ...]] = set()  # shapes past max_shapes, run eager
        # dynamo gives up on a function after recompile_limit shapes (8 by default) and then runs it eager
        # without telling the caller; lift it so the limit here is the one that applies, and is reported.
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, max_shapes + 2)
        mode = "reduce-overhead" if cuda_graphs else "default"
        self._compiled = compiler(model, mode=mode, dynamic=False, backend=backend)
        self.failed: str | None = None

    def _compiles(self, shape: tuple[int, ...]) -> bool:
        """Whether this input shape runs compiled: one already compiled, or a new one within max_shapes."""
        if shape in self.shapes:
            return True
        if len(self.shapes) < self.max_shapes:
            self.shapes.add(shape)
            return True
        if shape not in self.eager_shapes:
            self.eager_shapes.add(shape)
            log.warning(
                "input shape %s is past the %d compiled shapes: it runs eager", shape, self.max_shapes
            )
        return False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.failed is None and self._compiles(tuple(x.shape)):
            try:
                if self.cuda_graphs:
                    # Each call is a new step: the previous replay's outputs were already consumed.
                    torch.compiler.cudagraph_mark_step_begin()
                out: torch.Tensor = self._compiled(x)
                return out
            except Exception as exc:  # noqa: BLE001 - any compiler failure: run eager instead
                self.failed = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                log.warning("torch.compile failed (%s); running the encoder eager", self.failed)
        result: torch.Tensor = self.eager(x)
        return result


def compile_report(encoder: nn.Module) -> str:
    """How a prepared encoder has run so far, for a bench's output: "compiled (N shapes)", "eager: torch.compile
    failed (...)" or "not compiled". A compile that fails falls back to eager without failing the run (a
    slower shard beats a failed one), so a bench that printed only the path it asked for would have timed
    eager code as compiled."""
    found = [m for m in encoder.modules() if isinstance(m, CompiledEncoder)]
    if not found:
        return "not compiled"
    failed = [m.failed for m in found if m.failed is not None]
    if failed:
        return f"eager: torch.compile failed ({failed[0]})"
    shapes = sum(len(m.shapes) for m in found)
    eager = sum(len(m.eager_shapes) for m in found)
    return f"compiled ({shapes} shape{'s' if shapes != 1 else ''})" + (
        f", {eager} more eager" if eager else ""
    )


def cudagraph_skips() -> int:
    """How many compiled graphs inductor ran without CUDA graphs in this process (a CPU tensor in the graph,
    a mutated input, ...): inductor logs each skip and runs the graph without one, which costs a GPU's
    fixed per-kernel launch overhead that "reduce-overhead" is chosen to remove."""
    from torch._dynamo.utils import counters

    return int(counters["inductor"]["cudagraph_skips"])
