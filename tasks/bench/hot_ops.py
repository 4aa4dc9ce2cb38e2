"""`howto bench features --profile`: where one batch of an encoder spends its time, op by op.

A share of the ceiling says how far a model is from the hardware's limit, not why. On a CPU the answer is
usually one or two layer shapes that oneDNN runs poorly there (ResNeXt-101's stem on 3 channels on AVX2,
its grouped convs of 4 channels), and which ones differs between CPU kinds (AVX2, AVX-512, AMX). So the
bench can print, for one batch, the ops that took the most time with their input and weight shapes (a
weight of (128, 4, 3, 3, 3) is a grouped conv of 4 channels a group).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch.profiler import ProfilerActivity, profile


@dataclass(frozen=True)
class HotOp:
    """One op at one set of input shapes: its own time over all calls in the batch, and its share."""

    name: str
    shapes: tuple[tuple[int, ...], ...]  # the tensor inputs' shapes, non-tensor arguments left out
    calls: int
    seconds: float
    share: float

    def line(self) -> str:
        shapes = " ".join("x".join(map(str, s)) for s in self.shapes[:3])
        return f"{100 * self.share:5.1f}%  {self.seconds * 1e3:8.1f} ms  {self.calls:4d} calls  {self.name}  {shapes}"


def hot_ops(run: Callable[[], object], top: int = 6) -> tuple[float, list[HotOp]]:
    """Run `run()` once under torch's profiler; (the batch's profiled seconds, its `top` ops by own time)."""
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        run()
    events = prof.key_averages(group_by_input_shape=True)
    total = sum(e.self_cpu_time_total for e in events) / 1e6
    ranked = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    ops = [
        HotOp(
            name=e.key,
            shapes=tuple(tuple(s) for s in (e.input_shapes or []) if s),
            calls=e.count,
            seconds=e.self_cpu_time_total / 1e6,
            share=(e.self_cpu_time_total / 1e6) / total if total else 0.0,
        )
        for e in ranked
    ]
    return total, ops
