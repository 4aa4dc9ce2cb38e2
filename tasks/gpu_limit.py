"""Which GPU a CUDA shard or training run uses: one of its machine's GPUs held alone, and a slot of the
`gpu` global concurrency limit (an error when that limit is missing).

The limit admits as many CUDA runs as there are GPUs over all machines, but it picks no card: without
more, every run on a machine would take `cuda` (its first GPU), leaving the others idle and putting two
runs on one card. So each run also locks one GPU of its own machine (a lock file per GPU, named by the
card's UUID, so two processes that see the cards under different CUDA_VISIBLE_DEVICES still agree) and
runs there; while every GPU of the machine is held, it waits. The kernel drops a dead process's lock.

Prefect's own guard skips a limit that does not exist with a warning, so a forgotten setup would let every
worker on a GPU machine pile onto the same card. `howto deploy` creates the limit; without it a CUDA stage
stops before it starts, saying how to create it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

GPU_LIMIT = "gpu"
LOCK_DIR_ENV = "HOWTO_GPU_LOCK_DIR"
log = logging.getLogger(__name__)


class GpuLimitMissing(RuntimeError):
    """The global concurrency limit that guards the GPUs is missing or switched off."""


def check_gpu_limit(name: str = GPU_LIMIT) -> int:
    """The limit's number of slots; raises GpuLimitMissing when it does not exist or is inactive."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    fix = f"run `howto deploy` or `prefect gcl create {name} --limit N` (N: GPUs per machine)"
    try:
        with get_client(sync_client=True) as client:
            limit = client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        raise GpuLimitMissing(f"Prefect global concurrency limit {name!r} does not exist: {fix}") from None
    if not limit.active:
        raise GpuLimitMissing(f"Prefect global concurrency limit {name!r} is inactive: {fix}")
    return int(limit.limit)


def default_lock_dir() -> Path:
    """Where this machine's GPU locks live: $HOWTO_GPU_LOCK_DIR, else howto-gpu-locks in the temp dir."""
    return Path(os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / "howto-gpu-locks")


def requested_index(device: str) -> int | None:
    """N of "cuda:N"; None for "cuda" (any free GPU of this machine)."""
    kind, _, index = device.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise ValueError(f"not a CUDA device: {device!r} (use cuda or cuda:N)")
    return int(index) if index else None


@contextlib.contextmanager
def local_gpu(
    gpus: Sequence[str], wanted: int | None = None, lock_dir: Path | None = None, poll_s: float = 2.0
) -> Iterator[int]:
    """Hold one of this machine's GPUs alone; yields its index among `gpus` (the visible devices' ids).

    `wanted`: that GPU only; None: the first free one. Waits, polling every `poll_s`, while they are held.
    """
    if not gpus:
        raise ValueError("no CUDA device is visible to this process")
    if wanted is not None and not 0 <= wanted < len(gpus):
        raise ValueError(f"cuda:{wanted} asked for, but this process sees {len(gpus)} CUDA device(s)")
    folder = lock_dir or default_lock_dir()
    folder.mkdir(parents=True, exist_ok=True)
    candidates = [wanted] if wanted is not None else list(range(len(gpus)))
    waiting_since: float | None = None
    while True:
        for index in candidates:
            handle = open(folder / f"{re.sub(r'[^A-Za-z0-9._-]', '_', gpus[index])}.lock", "a+")  # noqa: SIM115
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                handle.truncate(0)
                handle.write(f"pid {os.getpid()}\n")  # for whoever looks: which process holds the card
                handle.flush()
                if waiting_since is not None:
                    log.info("GPU %d of this machine is free after %.0f s; running there", index,
                             time.monotonic() - waiting_since)  # fmt: skip
                yield index
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        if waiting_since is None:
            waiting_since = time.monotonic()
            which = f"GPU {wanted}" if wanted is not None else f"all {len(gpus)} GPU(s)"
            log.warning("%s of this machine busy with other runs (locks in %s); waiting", which, folder)
        time.sleep(poll_s)


@contextlib.contextmanager
def gpu_slot(
    device: str, gpus: Callable[[], Sequence[str]], name: str = GPU_LIMIT, lock_dir: Path | None = None
) -> Iterator[str]:
    """Where a run's CUDA work goes: one GPU of this machine held alone, then a slot of the `gpu` limit;
    yields the device to use ("cuda:N"). A CPU `device` passes through unchanged and needs neither.

    `gpus`: gives the visible CUDA devices' ids (models.encoders.cuda_device_ids), called for CUDA only,
    so CPU work never initialises CUDA. The limit is checked before waiting for a local GPU, so a missing
    limit fails at once.
    """
    if not device.startswith("cuda"):
        yield device
        return
    from prefect.concurrency.sync import concurrency

    check_gpu_limit(name)
    with local_gpu(gpus(), requested_index(device), lock_dir) as index:
        with concurrency(name, occupy=1, strict=True):  # strict: a limit deleted meanwhile is an error too
            yield f"cuda:{index}"
