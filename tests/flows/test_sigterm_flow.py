"""SIGTERM under Prefect's own engine (a deployment's flow run, cancelled): the shard tasks learn of it.

Prefect turns SIGTERM into a TerminationSignal raised in the main thread only; the shard tasks run in other
threads and used to go on to the end of their shard (an hour of video) while the runner waited to SIGKILL
them, and they took the ffmpeg that the runner's SIGTERM to the process group ended for a broken file.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest
from prefect import flow, task
from prefect.exceptions import TerminationSignal
from prefect.task_runners import ThreadPoolTaskRunner

from flows.runtime import run_shard_tasks
from tasks import interrupts


@pytest.mark.parametrize("to", ["process", "other thread"])
def test_sigterm_during_a_flow_run_reaches_the_shard_tasks(monkeypatch: pytest.MonkeyPatch, to: str) -> None:
    """`other thread`: the kernel may hand a process's signal to any thread that does not block it, and Python
    runs the handler in the main thread only, once that runs bytecode; Prefect's as_completed waited on a lock
    with no timeout, so the stop went unseen until the shard finished (a CI run saw that with os.kill)."""
    monkeypatch.setattr(interrupts, "_seen", threading.Event())
    monkeypatch.setattr(interrupts, "_terminated", threading.Event())
    started, finished = threading.Event(), threading.Event()
    seen_by_the_task: list[str] = []

    @task
    def shard_until_stopped(shard: int) -> dict[str, Any]:
        """A shard's per-item loop: it looks for a stop signal between items (tasks/features/stage.py)."""
        started.set()
        deadline = time.monotonic() + 90  # a busy host can keep the main thread (Prefect) from the signal
        while not interrupts.interrupt_seen() and time.monotonic() < deadline:
            time.sleep(0.01)
        seen_by_the_task.append(interrupts.stop_name() if interrupts.interrupt_seen() else "no signal")
        finished.set()
        return {"shard": shard}

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=1))
    def stage() -> list[dict[str, Any]]:
        return run_shard_tasks("sigterm_stage", shard_until_stopped, [{"shard": 0}])

    def terminate_once_started() -> None:
        if started.wait(60):
            if to == "process":
                os.kill(os.getpid(), signal.SIGTERM)
            else:  # to this thread: its C-level handler runs here, the main thread is not woken by it
                signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

    # Prefect passes the signal on to the handler it found once its crash handling is done: here a no-op
    # instead of the default, which would end pytest.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    sender = threading.Thread(target=terminate_once_started, daemon=True)
    try:
        sender.start()
        with pytest.raises(TerminationSignal):
            stage()
    finally:
        signal.signal(signal.SIGTERM, previous)
        sender.join(timeout=60)
    # The crashed flow does not wait for its task's thread (the process would, at exit): this test does.
    assert finished.wait(120)
    assert seen_by_the_task == ["SIGTERM"]
    assert interrupts.cut_by_interrupt(interrupts.FFMPEG_SIGNAL_EXIT)  # an ffmpeg it cut is no failed file
