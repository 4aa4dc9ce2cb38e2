"""Threads that work for a Prefect run keep its context, so what they log reaches the run's logs.

Prefect sends a log line to the server (the UI's run logs) only from a thread that knows its flow or task
run: a context variable, which a new thread starts without. yt-dlp's errors in the probe pool's threads, the
captions stage's download pool and the features stage's download thread, and the decoders' fallback warnings, went to the worker's
terminal alone, and the UI showed a run with failed videos and no word of why.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def start_thread(target: Callable[..., Any], *args: Any, name: str | None = None) -> threading.Thread:
    """A started daemon thread running target(*args) in a copy of the caller's context."""
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(target, *args), daemon=True, name=name)
    thread.start()
    return thread


def map_in_context(pool: Executor, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """pool.map(fn, items) with each call in its own copy of the caller's context (one context cannot be
    entered by two threads at once); results in order, the first failure raised as map raises it, and, as
    map does, the calls not started by then cancelled: a probe shard whose info write failed (a full disk)
    went on probing every other video of the shard, a request each at the polite rate, for nothing."""
    futures = [pool.submit(contextvars.copy_context().run, fn, item) for item in items]
    try:
        return [future.result() for future in futures]
    finally:
        for future in futures:
            future.cancel()  # a no-op for those done or running
