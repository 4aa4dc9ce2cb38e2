"""One writer at a time per shard of a local data root: two runs of a stage (two workers, a triggered run
beside a scheduled one) that reach the same shard take turns, and the second finds it done."""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from storage.layout import DataRoot

log = logging.getLogger(__name__)

LOCKS_DIR = "_locks"

# How often a run waiting for a shard tries the lock again and asks whether it should stop waiting.
WAIT_POLL_S = 0.5

# Test hook: called with the lock's path when the lock is held by another writer, before waiting for it.
on_wait_hook: Callable[[str], None] | None = None


def lock_path(root: DataRoot, dataset: str, shard: int) -> str:
    return root.path(LOCKS_DIR, dataset, f"part-{shard:05d}.lock")


@contextmanager
def shard_lock(
    root: DataRoot, dataset: str, shard: int, check_stop: Callable[[], None] | None = None
) -> Iterator[None]:
    """Hold shard `shard` of `dataset` for writing; on a local root, wait while another writer holds it.
    While it waits, `check_stop` is called every WAIT_POLL_S and may raise to give up the wait (Ctrl-C or
    SIGTERM: a blocked flock in a shard task's thread let neither stop the run until the other run's shard,
    hours of features, was written).

    Without it, a run that started a shard another run was writing redid the work and wrote over it: a
    features run that began a shard after another had parked some of its videos wrote the shard again
    without them (the first run had removed the parked parts once its shard was written), and a
    run cleaning up the shard's temp files removed the other's file before its rename.

    An exclusive flock on a small lock file of its own (`_locks/<dataset>/part-NNNNN.lock`, never
    removed: a waiter holds the file it opened, and a removed path would let a third writer lock a new
    one). The kernel drops the lock when its holder dies, even by SIGKILL. flock locks belong to the
    open file, so two threads of one process exclude each other too. An object store has no lock: runs
    sharing one split the shards with runner.part/parts.
    """
    with _held(root, lock_path(root, dataset, shard), f"{dataset} shard {shard}", check_stop):
        yield


def training_lock_path(root: DataRoot, run_id: str) -> str:
    return root.path(LOCKS_DIR, "training_runs", f"{run_id}.lock")


@contextmanager
def training_lock(
    root: DataRoot, run_id: str, check_stop: Callable[[], None] | None = None
) -> Iterator[None]:
    """Hold training run `run_id` of a local root, as `shard_lock` holds a shard: two pipelines whose
    stages both include training (two workers, a triggered run beside a manual one) both trained every
    epoch of the same run, hours on a GPU twice, writing the same checkpoints; the second now waits and
    then finds the run trained (or resumes after the first's last checkpoint, if it died)."""
    with _held(root, training_lock_path(root, run_id), f"training run {run_id}", check_stop):
        yield


@contextmanager
def _held(root: DataRoot, path: str, what: str, check_stop: Callable[[], None] | None) -> Iterator[None]:
    if not root.is_local:
        yield
        return
    root.makedirs(path.rsplit("/", 1)[0])
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        waiting = False
        while not _try_lock(fd):
            if not waiting:
                waiting = True
                log.info("%s: another run is writing it; waiting for it to finish", what)
                if on_wait_hook is not None:
                    on_wait_hook(path)
            if check_stop is not None:
                check_stop()
            time.sleep(WAIT_POLL_S)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
