"""`howto train` under torchrun: rank 0 prepares the shards, then every rank trains its share (DDP)."""

from __future__ import annotations

import os
from typing import Any

from models import distributed
from models.encoders import pick_device
from storage.layout import DataRoot
from tasks.train.config import TrainConfig
from tasks.train.prepare import build_pairs_shard, cache_text_shard, ready_shards
from tasks.train.run import train
from tasks.train.stage import minilm_encode


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def train_distributed(cfg: TrainConfig, root: DataRoot | str | None) -> dict[str, Any]:
    """The train_embedding stage without Prefect: one ephemeral server per rank would be N servers, and
    shard preparation must happen once, so rank 0 does it while the others wait at a barrier."""
    data = DataRoot.from_any(root)
    ctx = distributed.from_env(pick_device(cfg.device))
    try:
        if ctx.is_main:
            for shard in ready_shards(data):
                build_pairs_shard(data, shard, cfg.pooling)
                if cfg.text == "minilm":
                    cache_text_shard(data, shard, minilm_encode)
        distributed.barrier(ctx)
        result = train(cfg, data)
        distributed.finish(ctx)  # not on an error: a rank that failed would leave the others waiting here
        # Rank 0 alone reports: every rank of a run trained before reads its card, and each printed it.
        return result if ctx.is_main else {"run_id": result["run_id"], "rank": ctx.rank}
    finally:
        distributed.shutdown(ctx)
