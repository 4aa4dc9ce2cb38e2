"""Prefect retry rule for shard tasks: retry whole-shard failures, never a stage halt."""

from __future__ import annotations

from typing import Any

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
