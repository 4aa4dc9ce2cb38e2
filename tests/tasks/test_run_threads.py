"""map_in_context keeps pool.map's contract besides the context: results in order, the first failure raised,
and the calls not started by then never run (a probe shard that failed on its first video went on probing
the rest, each a request at the polite rate, for nothing)."""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tasks.run_threads import map_in_context

_who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


def test_results_in_order_each_call_in_the_callers_context() -> None:
    _who.set("the run")
    with ThreadPoolExecutor(max_workers=3) as pool:
        assert map_in_context(pool, lambda i: (i, _who.get()), range(5)) == [(i, "the run") for i in range(5)]


def test_a_failure_leaves_the_calls_not_started_unrun() -> None:
    started: list[int] = []
    release = threading.Event()

    def one(i: int) -> int:
        started.append(i)
        if i == 0:
            raise OSError("no space left on device")
        release.wait(timeout=30)  # holds the pool's one thread until the failure was raised
        return i

    with ThreadPoolExecutor(max_workers=1) as pool:
        with pytest.raises(OSError, match="no space"):
            map_in_context(pool, one, range(20))
        release.set()
    # The failing call, and at most the one its thread took up next; pool.map cancels the rest the same way.
    assert started[0] == 0 and len(started) <= 2, started
