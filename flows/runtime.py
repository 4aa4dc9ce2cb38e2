"""What every stage flow shares: the task runner choice, shard fan-out with a progress artifact,
the end-of-flow summary artifact and the catalog refresh."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from prefect import Flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from flows.runner_config import RunnerConfig
from storage.catalog import refresh
from storage.layout import DataRoot

F = TypeVar("F", bound=Flow[Any, Any])


def with_runner(flow: F, runner: RunnerConfig | None) -> F:
    """The same flow with the task runner the user asked for."""
    runner = runner or RunnerConfig()
    if runner.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        if runner.dask_address:
            return flow.with_options(task_runner=DaskTaskRunner(address=runner.dask_address))
        return flow.with_options(
            task_runner=DaskTaskRunner(
                cluster_kwargs={"n_workers": runner.max_workers, "threads_per_worker": 1}
            )
        )
    return flow.with_options(task_runner=ThreadPoolTaskRunner(max_workers=runner.max_workers))


def _artifact_key(stage: str) -> str:
    # Prefect keys allow lowercase letters, digits and dashes only.
    return "".join(c if c.isalnum() else "-" for c in stage.lower())


def run_shard_tasks(
    stage: str,
    task: Any,
    kwargs_per_shard: Sequence[dict[str, Any]],
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Submit one task per shard, wait for all, and keep a progress artifact current as they finish.

    Returns the manifests in shard order; a failed shard re-raises once every other shard has finished,
    so a crash of one shard never throws away the work of the others.
    """
    log = get_run_logger()
    total = len(kwargs_per_shard)
    artifact_id = create_progress_artifact(
        0.0, key=f"{_artifact_key(stage)}-progress", description=f"{stage}: shards finished"
    )
    if total == 0:
        update_progress_artifact(artifact_id, 100.0)
        return []
    futures = [task.submit(**kwargs) for kwargs in kwargs_per_shard]
    order = {id(f): i for i, f in enumerate(futures)}
    results: list[dict[str, Any] | None] = [None] * total
    first_error: BaseException | None = None
    for done, future in enumerate(as_completed(futures), 1):
        try:
            manifest = future.result()
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised after the others finish
            first_error = first_error or exc
            log.error("%s: shard %d failed: %s", stage, order[id(future)], exc)
            continue
        results[order[id(future)]] = manifest
        if on_result is not None:
            on_result(manifest)
        update_progress_artifact(artifact_id, 100.0 * done / total)
        log.info("%s: %d/%d shards (%s)", stage, done, total, "cached" if manifest.get("cached") else "ran")
    if first_error is not None:
        raise first_error
    return [r for r in results if r is not None]


def summarize(
    stage: str, manifests: list[dict[str, Any]], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Totals over shard manifests: rows in/out, drops by reason, errors, shards cached vs run."""
    drops: dict[str, int] = {}
    for m in manifests:
        for reason, n in (m.get("drops") or {}).items():
            drops[reason] = drops.get(reason, 0) + int(n)
    return {
        "stage": stage,
        "shards": len(manifests),
        "shards_cached": sum(1 for m in manifests if m.get("cached")),
        "rows_in": sum(int(m.get("rows_in", 0)) for m in manifests),
        "rows_out": sum(int(m.get("rows_out", 0)) for m in manifests),
        "drops": dict(sorted(drops.items())),
        "errors": sum(int(m.get("errors", 0)) for m in manifests),
        **(extra or {}),
    }


def finish_stage(stage: str, root: DataRoot, summary: dict[str, Any]) -> dict[str, Any]:
    """Refresh the DuckDB views and publish the stage's summary as a markdown artifact."""
    refresh(root)
    lines = [f"# {stage}", "", "| what | value |", "| --- | --- |"]
    for key, value in summary.items():
        if key == "stage":
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items()) or "-"
        lines.append(f"| {key} | {value} |")
    create_markdown_artifact(
        "\n".join(lines), key=f"{_artifact_key(stage)}-summary", description=f"{stage} summary"
    )
    get_run_logger().info("%s: %s", stage, summary)
    return summary
