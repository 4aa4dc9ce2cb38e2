"""Progress of long work (shards, videos, epochs) as events; a front end listens, nobody by default.

The work reports where it is (`advance`), the CLI decides how to show it (flows/cli_progress.py): the
stages stay free of any terminal code, and the flow's own log lines are unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# (what, done, total): `what` names one piece of work ("search_videos: probe shards"); total None = unknown.
Listener = Callable[[str, int, int | None], None]

_listeners: list[Listener] = []
_lock = threading.Lock()


def advance(what: str, done: int, total: int | None) -> None:
    """Report that `done` of `total` steps of `what` are finished (shard tasks call this from threads)."""
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener(what, done, total)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Send every `advance` to `listener` while the block runs."""
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)
