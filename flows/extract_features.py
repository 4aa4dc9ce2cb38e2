"""Stage 4 flow: frame_features shard k from videos shard k (videos kept by the captions stage)."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from flows.runtime import finish_stage, run_shard_tasks, summarize
from flows.stage_inputs import require_own_input
from storage.layout import DataRoot, check_data_root
from tasks.features.config import ExtractFeaturesConfig
from tasks.features.pipeline import release_encoders
from tasks.features.stage import features_shard
from tasks.features.weights import check_weights
from tasks.howto100m.layout import crawled_video_shards
from tasks.youtube.access import YoutubeAccess

STAGE = "extract_features"


# One shard at a time: each shard already uses every core (decoders + encoders), two would thrash.
@flow(name="extract_features", log_prints=False, task_runner=ThreadPoolTaskRunner(max_workers=1))
def extract_features(
    cfg: ExtractFeaturesConfig = ExtractFeaturesConfig(),
    data_root: str | None = None,
    access: YoutubeAccess = YoutubeAccess(),
) -> dict[str, Any]:
    """Download each kept video, extract ResNet-152 (1 fps) and ResNeXt-101 3D (1.5/s) features per shard."""
    log = get_run_logger()
    root = DataRoot.from_any(data_root)
    check_data_root(root)  # a file, read-only or full root fails here, before any network work
    require_own_input(root, "features")
    check_weights(
        cfg.models,
        random_weights=cfg.random_weights,
        resnet_weights=cfg.resnet_weights,
        resnext_weights=cfg.resnext_weights,
    )
    # Imported shards came with their captions, clips and features: never redone from the web.
    shards = crawled_video_shards(root)
    if cfg.random_weights and not (cfg.resnet_weights and cfg.resnext_weights):
        log.warning("%s: random weights allowed: models without weights use calibrated random ones", STAGE)
    log.info("%s: %d videos shards", STAGE, len(shards))
    try:
        manifests = run_shard_tasks(
            STAGE,
            features_shard,
            [{"root_url": root.url, "shard": k, "cfg": cfg, "access": access} for k in shards],
        )
    finally:
        # Shards in this process shared their encoders (tasks/features/encoder_pool.py); their memory goes
        # back before the next stage runs here. Workers elsewhere (dask) keep theirs for their next shards.
        release_encoders()
    summary = summarize(STAGE, manifests, {"random_weights_allowed": cfg.random_weights})
    return finish_stage(STAGE, root, summary)
