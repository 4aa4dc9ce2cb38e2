"""Prepared encoders kept between the shards one process runs.

Getting encoders ready costs the same for every shard: building and loading (or calibrating) the weights,
folding BatchNorm, converting and prepacking them for oneDNN, and on CUDA compiling and capturing one CUDA
graph per input shape (minutes per model). A worker that runs many shards does that once: the pool keeps
each prepared set under a key naming everything it was built from, and hands it to the next shard with the
same key.

One shard at a time holds a set: the packed weights' per-shape caches and the CUDA graphs are not safe to
share between threads, so a shard that finds every set of its key in use builds one more. A set returns to
the pool when its shard ends, failed or not; `clear` drops the idle ones (the stage's flow does at its end,
so the memory goes back before the next stage, training say, runs in the same process). A lease can evict
idle sets of other keys: a shard on one GPU drops the idle sets this process left on another GPU, whose
card lock it gave up and whose memory another worker's shard may need now.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

V = TypeVar("V")


class KeyedPool(Generic[V]):
    """Values built on demand under a hashable key and lent to one user at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[Hashable, list[V]] = {}
        self.built = 0  # values built since the pool was made (the log and the tests read it)
        self.evicted = 0  # idle values dropped by leases of other keys

    @contextmanager
    def lease(
        self, key: Hashable, build: Callable[[], V], evict: Callable[[Hashable], bool] | None = None
    ) -> Iterator[tuple[V, bool]]:
        """An idle value of `key`, or a new one from `build()`; yields (value, reused). Idle values of the
        keys `evict` names are dropped first. Building happens outside the lock, so two keys (two GPUs, say)
        get ready at the same time."""
        with self._lock:
            for other in [k for k in self._idle if k != key and evict is not None and evict(k)]:
                self.evicted += len(self._idle.pop(other))
            idle = self._idle.get(key)
            value = idle.pop() if idle else None
        reused = value is not None
        if value is None:
            value = build()
            with self._lock:
                self.built += 1
        try:
            yield value, reused
        finally:
            with self._lock:
                self._idle.setdefault(key, []).append(value)

    def idle(self) -> int:
        with self._lock:
            return sum(len(values) for values in self._idle.values())

    def clear(self) -> None:
        """Forget the idle values. One lent out at the time comes back when its user is done and stays
        until the next `clear`."""
        with self._lock:
            self._idle.clear()
