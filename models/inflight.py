"""Keep the device busy: batches go in through pinned host memory with asynchronous copies both ways (the
upload on a stream of its own, so it overlaps the previous batch's kernels), and up to `depth` of them are
in flight while the caller gathers the next one.

On CPU each submit simply runs (the compute is the caller's thread). With `pad_to`, short batches are
padded with zero rows to the fixed size, so a compiled encoder replays the one CUDA graph it captured; the
padding rows' outputs are dropped.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from models.encoders import Runtime, encode, run_encoder, to_input
from models.frame_rows import Rows, on_device, pad_with_zeros


def pad_rows(batch: Rows, size: int) -> Rows:
    """`batch` with zero rows appended up to `size` rows (as it is when it has that many already): a
    compiled encoder then sees one shape and replays its CUDA graph; the caller drops the padding's rows."""
    return pad_with_zeros(batch, size)


@dataclass
class _Flight:
    tag: Any
    rows: int
    host_in: torch.Tensor  # kept alive until its copy to the device (or its compute) has run
    host_out: torch.Tensor
    done: torch.cuda.Event


def _host(batch: Rows) -> torch.Tensor:
    """A host batch as a tensor (a tensor on another device comes back to the host first)."""
    return (
        batch.cpu()
        if isinstance(batch, torch.Tensor)
        else torch.from_numpy(np.require(batch, requirements="W"))
    )


class InflightEncoder:
    """submit(batch, tag) now; take finished (tag, float32 rows) from `done()` in submit order."""

    def __init__(self, model: nn.Module, rt: Runtime, depth: int = 3, pad_to: int | None = None) -> None:
        self.model, self.rt, self.depth, self.pad_to = model, rt, max(1, depth), pad_to
        self._flights: deque[_Flight] = deque()
        self._ready: list[tuple[Any, np.ndarray]] = []
        self.batches = 0
        self.padded_rows = 0
        self._upload: Any = None  # the host-to-device copy stream (CUDA only), made on first use

    @property
    def busy(self) -> bool:
        """True while the device still works on a submitted batch."""
        return bool(self._flights)

    def submit(self, batch: Rows, tag: Any) -> None:
        rows = len(batch)
        if self.pad_to is not None:
            batch = pad_rows(batch, self.pad_to)
            self.padded_rows += len(batch) - rows
        self.batches += 1
        if self.rt.device.type != "cuda":
            self._ready.append((tag, encode(self.model, batch, self.rt)[:rows]))
            return
        # Everything on the runtime's device and its current stream: with cuda:N (N > 0) the process's
        # current device is still 0, and an event recorded there would complete before N's copy back.
        with torch.cuda.device(self.rt.device):
            compute = torch.cuda.current_stream(self.rt.device)
            if on_device(batch, self.rt.device):
                # Decoded on the device (decode_device.py): nothing to upload. Its frames were made on the
                # decoder threads' default stream, the one compute runs on, so they are ready in order.
                host_in = batch  # kept alive until the batch lands
                x = to_input(batch, self.rt)
            else:
                host_in = _host(batch).pin_memory()
                if self._upload is None:
                    self._upload = torch.cuda.Stream(self.rt.device)
                # The upload runs on its own stream, so it overlaps the kernels of the batch before; the
                # compute stream waits for it, and record_stream keeps the allocator from handing the
                # input's memory out again before the compute stream is done with it.
                with torch.cuda.stream(self._upload):
                    x = to_input(host_in, self.rt)
                compute.wait_stream(self._upload)
                x.record_stream(compute)
            out = run_encoder(self.model, x)
            host_out = torch.empty((rows, out.shape[1]), dtype=torch.float32, pin_memory=True)
            host_out.copy_(out[:rows], non_blocking=True)
            # blocking: waiting for it sleeps instead of spinning a core the decoders need.
            event = torch.cuda.Event(blocking=True)
            event.record(compute)
        self._flights.append(_Flight(tag, rows, host_in, host_out, event))
        while len(self._flights) > self.depth:
            self._land(wait=True)

    def _land(self, wait: bool) -> bool:
        flight = self._flights[0]
        if wait:
            flight.done.synchronize()
        elif not flight.done.query():
            return False
        self._flights.popleft()
        self._ready.append((flight.tag, flight.host_out.numpy()))
        return True

    def done(self, wait: bool = False) -> list[tuple[Any, np.ndarray]]:
        """Finished batches in submit order; with `wait`, all of them (blocks until the device is done)."""
        while self._flights and self._land(wait):
            pass
        ready, self._ready = self._ready, []
        return ready
