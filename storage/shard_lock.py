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
    if not root.is_local:
        yield
        return
    path = lock_path(root, dataset, shard)
    root.makedirs(path.rsplit("/", 1)[0])
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        waiting = False
        while not _try_lock(fd):
            if not waiting:
                waiting = True
                log.info("%s shard %d: another run is writing it; waiting for it to finish", dataset, shard)
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
