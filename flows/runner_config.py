"""Where a flow's shard tasks run (kept apart from flows/runtime.py so configs import without Prefect)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class RunnerConfig(BaseModel):
    """Where shard tasks run: threads in the flow's process, or a Dask cluster (prefect-dask); and which
    share of the shards this run does, so several runs of one deployment split a stage between workers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_runner: Literal["threads", "dask"] = "threads"
    max_workers: int = Field(default=2, ge=1, description="shard tasks at once")
    dask_address: str | None = None  # tcp://scheduler:8786; None with "dask" starts a local cluster
    # Shard k belongs to share k % parts: runs with parts=2 and part=0, 1 never do the same shard.
    part: int = Field(default=0, ge=0, description="this run's share of the shards, 0 to parts-1")
    parts: int = Field(default=1, ge=1, description="how many runs share the shards of each stage")

    @model_validator(mode="after")
    def _part_in_range(self) -> RunnerConfig:
        if self.part >= self.parts:
            raise ValueError(f"runner.part must be below runner.parts ({self.parts}), got {self.part}")
        return self

    def owns(self, shard: int) -> bool:
        """Whether shard `shard` is this run's to do."""
        return shard % self.parts == self.part
