"""Data-parallel training under torchrun: process group from the environment, batch sharding, reductions."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from models.train_loop import Batch


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a torchrun job (rank 0 of 1 when not launched by torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


# Rank 0 prepares every shard (pairs, cached text) while the other ranks wait at the first barrier; on a
# big data root that takes longer than the backends' 10-minute default, which would kill the job.
PREPARE_TIMEOUT = timedelta(hours=6)


def from_env(device: torch.device | None = None) -> DistContext:
    """Join the process group torchrun describes (WORLD_SIZE, RANK, LOCAL_RANK); a no-op otherwise.

    NCCL when this job trains on CUDA, gloo otherwise: the backend follows the device asked for, not
    whether the machine has a GPU (`--device cpu` on a GPU box must not bind every rank to a GPU), and a
    CPU-only machine tests the same code path with two processes.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    on_cuda = device is not None and device.type == "cuda"
    if not dist.is_initialized():
        if on_cuda:
            torch.cuda.set_device(local)
        dist.init_process_group("nccl" if on_cuda else "gloo", timeout=PREPARE_TIMEOUT)
    return DistContext(rank, world, local)


def device_for(ctx: DistContext, preferred: torch.device) -> torch.device:
    """Each rank on its own GPU (LOCAL_RANK); CPU stays CPU."""
    if ctx.enabled and preferred.type == "cuda":
        return torch.device("cuda", ctx.local_rank)
    return preferred


def wrap(model: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """DDP around the model when distributed (gradients averaged every step); the model itself otherwise."""
    if not ctx.enabled:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def shard_batches(batches: Iterable[Batch], ctx: DistContext) -> Iterator[Batch]:
    """Rank r trains on batch r of every run of `world` consecutive batches.

    Every rank builds the same seeded batch sequence, so no data moves between processes. A batch too
    small to have negatives is skipped on every rank alike, and an incomplete last run is dropped, so all
    ranks take the same number of steps (DDP all-reduces every step; one extra step would hang the job).
    """
    if not ctx.enabled:
        yield from batches
        return
    group: list[Batch] = []
    for batch in batches:
        if len(batch) < 2:
            continue
        group.append(batch)
        if len(group) == ctx.world:
            yield group[ctx.rank]
            group = []


def sum_across(values: list[float], ctx: DistContext, device: torch.device) -> list[float]:
    """Element-wise sum of `values` over all ranks (the values themselves when not distributed)."""
    if not ctx.enabled:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return [float(v) for v in tensor.tolist()]


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def finish(ctx: DistContext) -> None:
    """Every rank leaves together, after rank 0 has written its last files.

    A rank that tore its process group down and exited while a peer still held gloo connections to it
    died in the C++ teardown now and then (SIGABRT, "terminate called without an active exception"),
    which failed the whole torchrun job after training had succeeded."""
    if ctx.enabled and dist.is_initialized():
        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()
