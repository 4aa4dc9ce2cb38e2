"""Where a flow's shard tasks run (kept apart from flows/runtime.py so configs import without Prefect)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class RunnerConfig(BaseModel):
    """Where shard tasks run: threads in the flow's process, or a Dask cluster (prefect-dask)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_runner: Literal["threads", "dask"] = "threads"
    max_workers: int = 2
    dask_address: str | None = None  # tcp://scheduler:8786; None with "dask" starts a local cluster
