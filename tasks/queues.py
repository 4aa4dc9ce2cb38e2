"""Bounded queues between a producer thread and a consumer that may stop early."""

from __future__ import annotations

import queue
import threading
from typing import Any


def put_unless_stopped(box: queue.Queue[Any], item: Any, stop: threading.Event, wait_s: float = 0.1) -> None:
    """Put `item` into a bounded queue, giving up once `stop` is set (the consumer has gone)."""
    while not stop.is_set():
        try:
            box.put(item, timeout=wait_s)
            return
        except queue.Full:
            continue
