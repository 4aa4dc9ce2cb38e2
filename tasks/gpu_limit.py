"""The `gpu` global concurrency limit: one slot per GPU shard or training run, and an error when it is missing.

Prefect's own guard skips a limit that does not exist with a warning, so a forgotten setup would let every
worker on a GPU machine pile onto the same card. `howto deploy` creates the limit; without it a CUDA stage
stops before it starts, saying how to create it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

GPU_LIMIT = "gpu"


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


@contextlib.contextmanager
def gpu_slot(on_cuda: bool, name: str = GPU_LIMIT) -> Iterator[None]:
    """Hold one slot of the `gpu` limit while CUDA work runs; CPU work needs no slot."""
    if not on_cuda:
        yield
        return
    from prefect.concurrency.sync import concurrency

    check_gpu_limit(name)
    with concurrency(name, occupy=1, strict=True):  # strict: a limit deleted meanwhile is an error too
        yield
