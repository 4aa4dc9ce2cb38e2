"""Politeness toward the video site: a rate cap with jitter (per process, or one for every worker when a
Prefect server is configured), and a circuit breaker for 429s that honours Retry-After."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from tasks.ratelimit import GlobalRateLimit, RateLimiter, prefect_server_url
from tasks.youtube.errors import CIRCUIT_ADVICE, ErrorKind, StageHalted

log = logging.getLogger(__name__)


class PolitenessSettings(BaseModel):
    """How hard we may hit the site; none of these change results (they live in the access model,
    which never enters a config hash). Frozen, so it keys the process-wide Politeness."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    requests_per_s: float = Field(
        default=0.5,
        ge=0,
        description="HTTP requests per second (pages, API calls, caption files, media), per process, or for "
        "all workers together when a Prefect server is configured; 0 = no cap",
    )
    global_limit: str = Field(
        default="howto-youtube-requests",
        pattern=r"^[A-Za-z0-9_.-]{0,64}$",
        description="Prefect global concurrency limit shared by every worker (with a Prefect server); "
        "empty = per-process cap only",
    )
    jitter_s: float = Field(
        default=1.0, ge=0, description="extra random wait in [0, jitter_s] before each request"
    )
    backoff_base_s: float = Field(
        default=30.0, ge=0, description="first pause after a 429, doubled per 429 in a row"
    )
    backoff_max_s: float = Field(default=900.0, ge=0)
    max_backoffs: int = Field(default=6, ge=0, description="HTTP 429s in a row before the stage halts")
    sleep_requests_s: float = Field(default=0.0, ge=0, description="yt-dlp sleep_interval_requests")
    sleep_subtitles_s: float = Field(default=0.0, ge=0, description="yt-dlp sleep_interval_subtitles")


class CircuitBreaker:
    """Opens on a 429 and pauses every caller; each further 429 in a row doubles the pause.

    Past `max_backoffs` consecutive 429s it raises StageHalted: hammering on would only get the
    address blocked for longer.
    """

    def __init__(
        self,
        base_s: float,
        max_s: float,
        max_backoffs: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.base_s, self.max_s, self.max_backoffs = base_s, max_s, max_backoffs
        self._clock, self._sleep = clock, sleep
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._open_until = 0.0
        self.consecutive = 0
        self.trips = 0  # total pauses, for the stage's stats
        self.paused_s = 0.0

    def record_rate_limited(self, message: str = "", retry_after_s: float | None = None) -> float:
        """Note a 429 and open the breaker; returns the pause length, or raises StageHalted.

        The pause is the doubled back-off or the server's Retry-After, whichever is longer (capped at
        `max_s`), plus up to 25% jitter.
        """
        with self._lock:
            self.consecutive += 1
            if self.consecutive > self.max_backoffs:
                raise StageHalted(ErrorKind.RATE_LIMITED, CIRCUIT_ADVICE, message)
            pause = min(self.max_s, max(self.base_s * 2 ** (self.consecutive - 1), retry_after_s or 0.0))
            pause *= 1.0 + self._rng.uniform(0.0, 0.25)  # so parallel crawlers do not return in step
            self._open_until = max(self._open_until, self._clock() + pause)
            self.trips += 1
        log.warning(
            "rate limited (HTTP 429), %d in a row: pausing the stage for %.1f s", self.consecutive, pause
        )
        return pause

    def record_success(self) -> None:
        with self._lock:
            self.consecutive = 0

    def wait_if_open(self) -> float:
        """Sleep while the breaker is open; returns the seconds waited."""
        with self._lock:
            delay = self._open_until - self._clock()
        if delay > 0:
            self._sleep(delay)
            with self._lock:
                self.paused_s += delay
            return delay
        return 0.0


class Politeness:
    """The rate limiter and the circuit breaker that every HTTP request of the process goes through."""

    def __init__(self, settings: PolitenessSettings, server_url: str | None = None) -> None:
        self.settings = settings
        local = RateLimiter(settings.requests_per_s, settings.jitter_s)
        self.limiter: RateLimiter | GlobalRateLimit = local
        if server_url and settings.global_limit and settings.requests_per_s > 0:
            # Every worker of a deployment reaches the same server: one cap for all of them.
            self.limiter = GlobalRateLimit(
                settings.global_limit, settings.requests_per_s, local, settings.jitter_s
            )
        self.breaker = CircuitBreaker(settings.backoff_base_s, settings.backoff_max_s, settings.max_backoffs)

    def before_request(self) -> float:
        """Wait for the breaker to close and for our slot under the rate cap; returns seconds waited."""
        return self.breaker.wait_if_open() + self.limiter.wait()


_shared: dict[PolitenessSettings, Politeness] = {}
_shared_lock = threading.Lock()


def shared_politeness(settings: PolitenessSettings) -> Politeness:
    """One Politeness per process and settings, so concurrent shard tasks share the cap and the breaker;
    with a Prefect server configured, its cap is the server's global limit."""
    with _shared_lock:
        if settings not in _shared:
            _shared[settings] = Politeness(settings, prefect_server_url())
        return _shared[settings]
