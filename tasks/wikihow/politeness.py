"""Politeness for crawling: a per-host request-rate cap, back-off delays with jitter, Retry-After, robots.txt."""

from __future__ import annotations

import random
import threading
import urllib.robotparser

# The project's one rate limiter and Retry-After reader (the YouTube client uses them too), re-exported
# for the wikiHow client.
from tasks.ratelimit import RateLimiter, retry_after_s

__all__ = ["RETRY_STATUSES", "RateLimiter", "Robots", "backoff_delay", "retry_after_s", "shared_limiter"]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


_LIMITERS: dict[tuple[str, float], RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def shared_limiter(host: str, rps: float) -> RateLimiter:
    """One limiter per (host, rps) per process, so parallel shard threads share the cap."""
    with _LIMITERS_LOCK:
        key = (host, rps)
        if key not in _LIMITERS:
            _LIMITERS[key] = RateLimiter(rps)
        return _LIMITERS[key]


def backoff_delay(attempt: int, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Exponential back-off with full jitter: uniform(0, min(max, base * 2**attempt)), attempt from 0."""
    ceiling = min(max_s, base_s * (2.0**attempt))
    return (rng or random).uniform(0.0, ceiling)


class Robots:
    """robots.txt rules for one site (RFC 9309: a missing file allows all; an unreachable one allows
    nothing, and is no rule to remember: it is fetched again on the next try)."""

    def __init__(self, text: str | None, *, allow_all: bool = False) -> None:
        self._parser = urllib.robotparser.RobotFileParser()
        self._parser.parse((text or "").splitlines())
        self._allow_all = allow_all

    @classmethod
    def from_status(cls, status: int, text: str) -> Robots | None:
        """The rules a robots.txt answer gives: a 2xx file is parsed; a 4xx (RFC 9309 "unavailable")
        allows all; None for 429, 5xx and anything else: the file is unreachable for now, not a rule."""
        if 200 <= status < 300:
            return cls(text)
        if 400 <= status < 500 and status != 429:
            return cls(None, allow_all=True)
        return None

    def allowed(self, user_agent: str, url: str) -> bool:
        return self._allow_all or bool(self._parser.can_fetch(user_agent, url))

    def crawl_delay_s(self, user_agent: str) -> float | None:
        delay = self._parser.crawl_delay(user_agent)
        return float(delay) if delay is not None else None
