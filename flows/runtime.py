"""What every stage flow shares: the task runner choice, shard fan-out with a progress artifact,
the end-of-flow summary artifact (with what yt-dlp said and what to do about it) and the catalog refresh."""

from __future__ import annotations

import queue
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from prefect import Flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.context import FlowRunContext
from prefect.exceptions import TerminationSignal
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner

from flows.console_logs import guard_console_logs
from flows.runner_config import RunnerConfig
from storage.catalog import refresh
from storage.layout import DataRoot
from tasks.artifacts import publish_shard_table
from tasks.interrupts import note_stop
from tasks.progress import advance
from tasks.report.markdown_text import md_counts, md_text
from tasks.youtube.messages import YTDLP_KEY, advice_for, merge_counts

F = TypeVar("F", bound=Flow[Any, Any])

# Every flow module imports this one, and Prefect has configured its logging by now (the prefect imports above
# do it): its console handler shows scraped text in log lines as text, in a worker's flow-run process and in a
# script that runs a flow as in the CLI (which does the same in setup_logging).
guard_console_logs()

# What yt-dlp said in the shards of each running flow (every run_shard_tasks call of the flow, e.g. the
# search and the probe phases of search_videos), until its summary takes it.
_said: dict[str, Counter[str]] = {}
_said_lock = threading.Lock()


def _flow_run_key() -> str | None:
    ctx = FlowRunContext.get()
    return str(ctx.flow_run.id) if ctx is not None and ctx.flow_run is not None else None


def _note_said(manifest: dict[str, Any]) -> None:
    key, counts = _flow_run_key(), manifest.get(YTDLP_KEY)
    if key is not None and counts:
        with _said_lock:
            _said.setdefault(key, Counter()).update(counts)


# The share of the shards the running pipeline does (RunnerConfig.part/parts), seen by its stage subflows:
# they run in the caller's thread, so a context variable reaches them without a parameter on every flow.
_share: ContextVar[RunnerConfig | None] = ContextVar("howto_shard_share", default=None)


@contextmanager
def shard_share(runner: RunnerConfig | None) -> Iterator[None]:
    """Within the block, run_shard_tasks submits only the shards `runner.owns` (all when parts == 1)."""
    token = _share.set(runner if runner is not None and runner.parts > 1 else None)
    try:
        yield
    finally:
        _share.reset(token)


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


# How long the main thread sleeps at most while it waits for shard tasks (see as_finished).
SIGNAL_POLL_S = 0.5


def as_finished(
    futures: Sequence[PrefectFuture[Any]], poll_s: float = SIGNAL_POLL_S
) -> Iterator[PrefectFuture[Any]]:
    """The futures in the order they finish, as prefect.futures.as_completed yields them, but the main thread is
    never blocked for longer than `poll_s`. Python runs a signal's handler in the main thread only, the next
    time it runs bytecode, while the kernel may hand a process's SIGTERM or SIGINT to any of its threads (to a
    shard task's, to ffmpeg's reader); as_completed's untimed wait then kept the stop unseen until a shard task
    finished: for a features shard, hours. A timed wait lets the handler run within `poll_s`."""
    finished: queue.SimpleQueue[PrefectFuture[Any]] = queue.SimpleQueue()
    for future in futures:
        future.add_done_callback(finished.put)
    for _ in futures:
        while True:
            try:
                yield finished.get(timeout=poll_s)
                break
            except queue.Empty:
                continue


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
    share = _share.get()
    if share is not None:
        every = len(kwargs_per_shard)
        kwargs_per_shard = [
            kw for kw in kwargs_per_shard if "shard" not in kw or share.owns(int(kw["shard"]))
        ]
        log.info(
            "%s: share %d of %d: %d of %d shards",
            stage,
            share.part,
            share.parts,
            len(kwargs_per_shard),
            every,
        )
    total = len(kwargs_per_shard)
    artifact_id = create_progress_artifact(
        0.0, key=f"{_artifact_key(stage)}-progress", description=f"{stage}: shards finished"
    )
    if total == 0:
        update_progress_artifact(artifact_id, 100.0)
        return []
    advance(f"{stage}: shards", 0, total)
    results: list[dict[str, Any] | None] = [None] * total
    first_error: BaseException | None = None
    try:  # from the first submit on: a shard task may be at work before the last one is submitted
        futures = [task.submit(**kwargs) for kwargs in kwargs_per_shard]
        order = {id(f): i for i, f in enumerate(futures)}
        for done, future in enumerate(as_finished(futures), 1):
            try:
                manifest = future.result()
            except TerminationSignal:
                raise
            except BaseException as exc:  # noqa: BLE001 - collected and re-raised after the others finish
                first_error = first_error or exc
                # With the exception: the CLI keeps an expected one off the terminal (it prints it once, last).
                log.error("%s: shard %d failed: %s", stage, order[id(future)], exc, exc_info=exc)
                continue
            results[order[id(future)]] = manifest
            _note_said(manifest)
            if on_result is not None:
                on_result(manifest)
            update_progress_artifact(artifact_id, 100.0 * done / total)
            advance(f"{stage}: shards", done, total)
            log.info(
                "%s: %d/%d shards (%s)", stage, done, total, "cached" if manifest.get("cached") else "ran"
            )
    except TerminationSignal:
        # SIGTERM under Prefect's engine (a cancelled run, `kill`, a scheduler's stop) reaches the main thread
        # only, here: the shard tasks in the other threads learn of it through note_stop, and stop after the
        # item in hand, with what a SIGTERM to the process group cut recorded as no failure (tasks/interrupts).
        note_stop(signal.SIGTERM)
        raise
    if first_error is not None:
        raise first_error
    return [r for r in results if r is not None]


def summarize(
    stage: str, manifests: list[dict[str, Any]], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Totals over shard manifests: rows in/out, drops by reason, errors, shards cached vs run, and what
    yt-dlp said (`ytdlp`: warnings and errors by class, over every shard task this flow ran).
    Publishes the per-shard table artifact on the way."""
    publish_shard_table(stage, manifests)
    drops: dict[str, int] = {}
    for m in manifests:
        for reason, n in (m.get("drops") or {}).items():
            drops[reason] = drops.get(reason, 0) + int(n)
    key = _flow_run_key()
    with _said_lock:
        ran = _said.pop(key, None) if key is not None else None
    said = (
        dict(sorted(ran.items()))
        if ran is not None
        else merge_counts(m.get(YTDLP_KEY) or {} for m in manifests)
    )
    summary: dict[str, Any] = {
        "stage": stage,
        "shards": len(manifests),
        "shards_cached": sum(1 for m in manifests if m.get("cached")),
        "rows_in": sum(int(m.get("rows_in", 0)) for m in manifests),
        "rows_out": sum(int(m.get("rows_out", 0)) for m in manifests),
        "drops": dict(sorted(drops.items())),
        "errors": sum(int(m.get("errors", 0)) for m in manifests),
    }
    if said:
        summary[YTDLP_KEY] = said
    return {**summary, **(extra or {})}


def said_lines(said: dict[str, int]) -> list[str]:
    """The markdown table of what yt-dlp said: one row per `level:class`, with what to do about it."""
    if not said:
        return []
    lines = ["", "## What yt-dlp said", "", "| message | count | what to do |", "| --- | --- | --- |"]
    lines += [
        f"| {md_text(key)} | {n} | {advice_for(key)} |"  # ours: its `code` spans stay
        for key, n in sorted(said.items(), key=lambda kv: -kv[1])
    ]
    return lines


def finish_stage(stage: str, root: DataRoot, summary: dict[str, Any]) -> dict[str, Any]:
    """Refresh the DuckDB views and publish the stage's summary as a markdown artifact (drop reasons and
    other values from the data escaped: a `|` in one shifted the table, HTML or a link rendered in the UI)."""
    refresh(root)
    lines = [f"# {md_text(stage)}", "", "| what | value |", "| --- | --- |"]
    for key, value in summary.items():
        if key == "stage":
            continue
        shown = md_counts(value) if isinstance(value, dict) else md_text(value)
        lines.append(f"| {md_text(key)} | {shown} |")
    said = summary.get(YTDLP_KEY) or {}
    lines += said_lines(said)
    create_markdown_artifact(
        "\n".join(lines), key=f"{_artifact_key(stage)}-summary", description=f"{stage} summary"
    )
    log = get_run_logger()
    log.info("%s: %s", stage, summary)
    for key, n in said.items():
        if not key.endswith(":unavailable"):  # gone videos are ordinary rows, nothing to fix
            log.warning("%s: yt-dlp said %s %d times: %s", stage, key, n, advice_for(key))
    return summary
