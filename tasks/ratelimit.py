"""The request-rate limiters of the project: a cap shared by every thread of a process (plus jitter), and
one shared by every process that reaches one Prefect server; and the wait a server asks for (Retry-After)."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

log = logging.getLogger(__name__)


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


class GlobalRateLimit:
    """At most `rate` request starts per second across every process that reaches one Prefect server.

    A Prefect global concurrency limit with slot decay: each request occupies one slot, which decays at
    `rate` per second, and a limit of one slot allows no burst. The limit is created, or set to `rate`,
    on first use. Should the server become unreachable, `fallback` (the per-process cap) takes over for
    the rest of the process: an API hiccup never stops a crawl, and the local cap still holds.
    """

    def __init__(self, name: str, rate: float, fallback: RateLimiter, jitter_s: float = 0.0) -> None:
        self.name, self.rate, self.fallback = name, rate, fallback
        self._jitter = RateLimiter(0, jitter_s)  # jitter only: the spacing is the server's
        self._lock = threading.Lock()
        self._ready = False
        self.broken: str | None = None  # why the fallback took over

    def slow_down(self, interval_s: float) -> None:
        self.fallback.slow_down(interval_s)

    def _ensure(self) -> None:
        """Create the limit, or bring its rate in line with ours (the config is the source of truth)."""
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
        from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

        with get_client(sync_client=True) as client:
            try:
                current = client.read_global_concurrency_limit_by_name(self.name)
            except ObjectNotFound:
                try:
                    client.create_global_concurrency_limit(
                        GlobalConcurrencyLimitCreate(name=self.name, limit=1, slot_decay_per_second=self.rate)
                    )
                    log.info("created global rate limit %s: %.3g requests/s", self.name, self.rate)
                    return
                except ObjectAlreadyExists:  # another worker was first
                    current = client.read_global_concurrency_limit_by_name(self.name)
            if current.slot_decay_per_second != self.rate or current.limit != 1 or not current.active:
                client.update_global_concurrency_limit(
                    self.name,
                    GlobalConcurrencyLimitUpdate(limit=1, active=True, slot_decay_per_second=self.rate),
                )
                log.info("set global rate limit %s to %.3g requests/s", self.name, self.rate)

    def wait(self) -> float:
        """Block until the server grants a slot; returns the seconds waited."""
        if self.broken is not None:
            return self.fallback.wait()
        started = time.monotonic()
        try:
            with self._lock:
                if not self._ready:
                    self._ensure()
                    self._ready = True
            from prefect.concurrency.sync import rate_limit

            rate_limit(self.name, occupy=1, strict=True)
        except Exception as exc:  # noqa: BLE001 - any API failure: the per-process cap takes over
            self.broken = f"{type(exc).__name__}: {exc}"
            log.warning(
                "global rate limit %s unavailable (%s): per-process cap of %.3g requests/s from now on",
                self.name,
                self.broken,
                self.rate,
            )
            return time.monotonic() - started + self.fallback.wait()
        return time.monotonic() - started + self._jitter.wait()


def prefect_server_url() -> str | None:
    """The API URL of a configured Prefect server; None in ephemeral mode (no server shared by workers)."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """Seconds asked for by a Retry-After header (delta-seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
