"""The one request-rate limiter of the project: a cap shared by every thread that holds it, plus jitter."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable


class RateLimiter:
    """At most `rate` request starts per second across every thread holding this limiter.

    `rate` 0 means no cap. `jitter_s` adds a random wait in [0, jitter_s] before each request, so that
    parallel crawlers do not fall into step. Idle time is not banked: after a pause the next request
    goes at once, the one after waits a full interval.
    """

    def __init__(
        self,
        rate: float,
        jitter_s: float = 0.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.interval_s = 1.0 / rate if rate > 0 else 0.0
        self.jitter_s = max(0.0, jitter_s)
        self._clock, self._sleep = clock, sleep
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._next = 0.0

    def slow_down(self, interval_s: float) -> None:
        """Never go faster than `interval_s` between requests (a robots.txt Crawl-delay, say)."""
        with self._lock:
            self.interval_s = max(self.interval_s, interval_s)

    def wait(self) -> float:
        """Block until this caller's slot; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            jitter = self._rng.uniform(0.0, self.jitter_s) if self.jitter_s else 0.0
            slot = max(now, self._next) + jitter
            # Reserve the slot under the lock so concurrent callers queue instead of bunching up.
            self._next = slot + self.interval_s
        delay = slot - now
        if delay > 0:
            self._sleep(delay)
        return max(0.0, delay)
