"""Prefect helpers for the shard tasks: the retry rule (never retry a halt) and a logger that works anywhere."""

from __future__ import annotations

import logging
from typing import Any

from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger

from tasks.retry_rules import retry_unless
from tasks.youtube.errors import StageHalted

# False when the shard stopped on purpose (bot check, circuit breaker): retrying would hammer on.
not_halted = retry_unless(StageHalted)


def run_logger() -> Any:
    """The Prefect run logger inside a run; the module logger when a task body is called directly (tests, bench)."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("tasks.youtube")
