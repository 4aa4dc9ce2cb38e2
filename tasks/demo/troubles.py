"""Trouble switches: per-test faults the demo site injects, each mimicking what the real web does."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import get_type_hints

from tasks.demo.videos import DemoVideo

LOW_VIEWS = 42
LONG_DURATION_S = 2400
FEW_WORDS = 40


def _ids(value: Iterable[str] | str) -> frozenset[str]:
    return frozenset([value] if isinstance(value, str) else value)


@dataclass(frozen=True)
class Troubles:
    """Which faults are on. Id sets name video ids; counters apply to the first N matching requests."""

    low_views: frozenset[str] = frozenset()  # reported with fewer than 100 views
    long_videos: frozenset[str] = frozenset()  # reported duration > 2000 s (metadata only)
    few_words: frozenset[str] = frozenset()  # caption tracks stop after FEW_WORDS words
    private: frozenset[str] = frozenset()  # watch page: "Private video"
    removed: frozenset[str] = frozenset()  # watch page: "Video unavailable"
    truncated_captions: frozenset[str] = frozenset()  # .vtt body cut short of its Content-Length
    corrupt_videos: frozenset[str] = frozenset()  # .mp4 served with its container header destroyed
    server_error: frozenset[str] = frozenset()  # watch page answers HTTP 503 (an overloaded backend)
    too_many_requests: int = 0  # the first N requests (any path) answer HTTP 429
    retry_after_s: int = 1  # Retry-After header on those 429s
    slow_s: float = 0.0  # delay before answering, to run past a client's timeout
    slow_prefix: str = "/"  # only requests whose path starts with this are slowed
    slow_ids: frozenset[str] = frozenset()  # if set, only requests for these video ids (`v=`) are slowed
    bot_check: int = 0  # the first N watch pages ask to sign in to confirm you're not a bot

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "frozenset[str]" and not isinstance(value, frozenset):
                object.__setattr__(self, f.name, _ids(value))


def switch_names() -> list[str]:
    """Every trouble switch, in declaration order (what `--trouble NAME=VALUE` accepts)."""
    return [f.name for f in fields(Troubles)]


def _number(kind: type[int] | type[float], raw: str) -> int | float:
    try:
        value = kind(raw.strip())
    except ValueError:
        raise ValueError(f"{raw!r} is not {'an integer' if kind is int else 'a number'}") from None
    # Every numeric switch is a count or a duration: a negative one means nothing, an infinite one hangs.
    if value < 0 or not math.isfinite(value):
        raise ValueError(f"{raw!r} must be a finite number >= 0")
    return value


def _switch(name: str, kind: object, raw: str) -> object:
    """One switch's value from its text, by the field's type."""
    if kind == frozenset[str]:
        return frozenset(i.strip() for i in raw.split(",") if i.strip())
    if kind is int or kind is float:
        return _number(kind, raw)
    if kind is str:
        return raw
    # A field of a type nobody taught the parser: a bug in this module, not bad input.
    raise TypeError(f"trouble switch {name}: no parser for {kind}")


def parse_troubles(items: Iterable[str]) -> Troubles:
    """`NAME=VALUE` strings -> Troubles, typed by the dataclass fields; ValueError names the bad switch.

    Id-set switches take comma-separated ids and add up when repeated; others keep their last value.
    """
    # Resolved types, not f.type: `from __future__ import annotations` makes those strings.
    hints = get_type_hints(Troubles)
    allowed = f"switches: {', '.join(switch_names())}"
    values: dict[str, object] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep:
            raise ValueError(f"trouble switch {item!r}: expected NAME=VALUE; {allowed}")
        if name not in hints:
            raise ValueError(f"unknown trouble switch {name!r}; {allowed}")
        try:
            value = _switch(name, hints[name], raw)
        except ValueError as exc:
            raise ValueError(f"trouble switch {name}: {exc}; {allowed}") from None
        previous = values.get(name)
        if isinstance(value, frozenset) and isinstance(previous, frozenset):
            value = previous | value
        values[name] = value
    return Troubles(**values)  # type: ignore[arg-type]


def describe(troubles: Troubles) -> list[str]:
    """The switches that differ from the defaults, as `NAME=VALUE` (parse_troubles reads them back)."""
    default = Troubles()
    out = []
    for name in switch_names():
        value = getattr(troubles, name)
        if value != getattr(default, name):
            out.append(f"{name}={','.join(sorted(value)) if isinstance(value, frozenset) else value}")
    return out


@dataclass(frozen=True)
class Reported:
    """A video's metadata as the site reports it under the current troubles."""

    view_count: int
    duration_s: int
    status: str  # 'ok' | 'private' | 'removed'


def reported(video: DemoVideo, troubles: Troubles) -> Reported:
    """Apply metadata troubles to a video."""
    status = video.status
    if video.id in troubles.private:
        status = "private"
    if video.id in troubles.removed:
        status = "removed"
    return Reported(
        view_count=LOW_VIEWS if video.id in troubles.low_views else video.view_count,
        duration_s=LONG_DURATION_S if video.id in troubles.long_videos else video.reported_duration_s,
        status=status,
    )


class Counters:
    """Thread-safe request counters for the first-N troubles (reset when troubles change)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def take(self, name: str, limit: int) -> bool:
        """True while fewer than `limit` requests have claimed `name`."""
        with self._lock:
            n = self._counts.get(name, 0)
            if n >= limit:
                return False
            self._counts[name] = n + 1
            return True
