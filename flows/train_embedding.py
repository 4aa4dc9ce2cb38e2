"""Stage 5 flow: clip pairs from clips + frame_features, cached MiniLM captions, then one training run."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from flows.runtime import finish_stage, run_shard_tasks, summarize
from storage.layout import DataRoot, check_data_root
from tasks.train.config import TrainConfig
from tasks.train.prepare import ready_shards
from tasks.train.stage import pairs_shard, text_shard, train_run

STAGE = "train_embedding"


@flow(name="train_embedding", log_prints=False)
def train_embedding(cfg: TrainConfig = TrainConfig(), data_root: str | None = None) -> dict[str, Any]:
    """Build/refresh training pairs per shard, cache text embeddings, train (or resume) the run."""
    log = get_run_logger()
    root = DataRoot.from_any(data_root)
    check_data_root(root)  # a file, read-only or full root fails here, before any network work
    shards = ready_shards(root)
    log.info("%s: %d shards with clips and frame features", STAGE, len(shards))
    kwargs = [{"root_url": root.url, "shard": k} for k in shards]
    pooling = {"clip_pool": cfg.clip_pool, "clip_context_s": cfg.clip_context_s}
    pairs = run_shard_tasks(f"{STAGE}: pairs", pairs_shard, [{**kw, **pooling} for kw in kwargs])
    if cfg.text == "minilm":
        run_shard_tasks(f"{STAGE}: text embeddings", text_shard, kwargs)
    result = train_run(cfg, root.url)
    summary = summarize(
        STAGE, pairs, {k: result.get(k) for k in ("run_id", "epochs", "metrics", "precision", "checkpoint")}
    )
    return finish_stage(STAGE, root, summary)
