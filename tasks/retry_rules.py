"""Prefect retry rules for the shard tasks: retry any failure except those a retry would only repeat."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

RetryRule = Callable[[Any, Any, Any], bool]


def retry_unless(
    *final: type[BaseException], final_if: Callable[[BaseException], bool] | None = None
) -> RetryRule:
    """A `retry_condition_fn` that retries a failed task run unless it failed with one of `final`
    (a halt on purpose, a site that never answered, weights that are not weights: the same again), or with
    an error `final_if` says a retry would only repeat (a 404 from an API that is not where it was said)."""

    def worth_retrying(task: Any, task_run: Any, state: Any) -> bool:
        try:
            state.result(raise_on_failure=True)
        except final:
            return False
        except Exception as exc:  # noqa: BLE001 - any other failure is worth a retry
            return not (final_if is not None and final_if(exc))
        return True

    return worth_retrying
