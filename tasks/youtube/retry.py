"""Prefect helpers for the shard tasks: the retry rule (never retry a halt) and a logger that works anywhere."""

from __future__ import annotations

import logging
from typing import Any

from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger

from tasks.youtube.errors import StageHalted


def not_halted(task: Any, task_run: Any, state: Any) -> bool:
    """False when the shard stopped on purpose (bot check, circuit breaker): retrying would hammer on."""
    try:
        state.result(raise_on_failure=True)
    except StageHalted:
        return False
    except Exception:  # noqa: BLE001 - any other failure of the shard is worth a retry
        return True
    return True


def run_logger() -> Any:
    """The Prefect run logger inside a run; the module logger when a task body is called directly (tests, bench)."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("tasks.youtube")
