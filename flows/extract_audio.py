"""Stage 4b flow: audio_features shard k from the tracks the features stage kept for videos shard k."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from flows.runtime import finish_stage, run_shard_tasks, summarize
from flows.stage_inputs import require_own_input
from storage.layout import DataRoot, check_data_root
from storage.shards import read_marker
from tasks.audio.config import ExtractAudioConfig
from tasks.audio.stage import audio_shard
from tasks.audio.weights import check_audio_weights
from tasks.howto100m.layout import crawled_video_shards
from tasks.youtube.access import YoutubeAccess

STAGE = "extract_audio"


@flow(name="extract_audio", log_prints=False, task_runner=ThreadPoolTaskRunner(max_workers=1))
def extract_audio(
    cfg: ExtractAudioConfig | None = None,
    data_root: str | None = None,
    access: YoutubeAccess | None = None,
) -> dict[str, Any]:
    """Decode each kept video's audio to 16 kHz mono log-mels and encode every second (audio_features)."""
    cfg = cfg or ExtractAudioConfig()
    access = access or YoutubeAccess()
    root = DataRoot.from_any(data_root)
    check_data_root(root)
    require_own_input(root, "audio")
    check_audio_weights(cfg)
    shards = crawled_video_shards(root)
    get_run_logger().info("%s: %d videos shards, encoder %s", STAGE, len(shards), cfg.encoder)
    manifests = run_shard_tasks(
        STAGE, audio_shard, [{"root_url": root.url, "shard": k, "cfg": cfg, "access": access} for k in shards]
    )
    # What each shard decoded and how long it took are in its marker (cached shards: their first run).
    extras = [m.extra for m in (read_marker(root, "audio_features", k) for k in shards) if m is not None]
    seconds = sum(float(e.get("audio_seconds", 0.0)) for e in extras)
    wall = sum(float(e.get("audio_wall_s", 0.0)) for e in extras)
    extra = {"encoder": cfg.encoder, "audio_seconds": round(seconds, 1), "audio_wall_s": round(wall, 2)}
    return finish_stage(STAGE, root, summarize(STAGE, manifests, extra))
