"""Prefect retry rules for the shard tasks: retry any failure except those a retry would only repeat."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

RetryRule = Callable[[Any, Any, Any], bool]


def retry_unless(*final: type[BaseException]) -> RetryRule:
    """A `retry_condition_fn` that retries a failed task run unless it failed with one of `final`
    (a halt on purpose, a site that never answered, weights that are not weights: the same again)."""

    def worth_retrying(task: Any, task_run: Any, state: Any) -> bool:
        try:
            state.result(raise_on_failure=True)
        except final:
            return False
        except Exception:  # noqa: BLE001 - any other failure is worth a retry
            return True
        return True

    return worth_retrying
