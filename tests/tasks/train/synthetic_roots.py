"""Shared set-up of the training tests: one torch thread for tiny models, a synthetic root with its pairs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch

from storage.layout import DataRoot
from tasks.synthetic.training import write_synthetic_root
from tasks.train.prepare import build_pairs_shard, ready_shards


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Tiny models: a second thread only adds sync cost on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def paired_synthetic_root(
    path: Path, n_videos: int, n_steps: int, dim: int = 64, captions: Sequence[str] | None = None
) -> DataRoot:
    """A synthetic data root with every shard's clip pairs built, ready to train on."""
    data = write_synthetic_root(path, n_videos=n_videos, n_steps=n_steps, dim=dim, captions=captions)
    for shard in ready_shards(data):
        build_pairs_shard(data, shard)
    return data
