"""Shard work before training: clip pairs from clips + frame_features, cached sentence embeddings."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from storage.layout import DataRoot
from storage.shards import list_markers, read_shard, valid_marker
from tasks.common import config_hash
from tasks.features.recorded import recorded_features_config
from tasks.shard_runner import ShardInput, ShardJob, ShardOutput, input_fingerprints, run_job
from tasks.train.pooling import (
    MODEL_FPS,
    MODELS,
    REFERENCE_POOLING,
    ClipPooling,
    PoolingMismatch,
    build_pairs,
)

log = logging.getLogger(__name__)

MINILM_NAME = "all-MiniLM-L6-v2"
# The clip_pairs marker's count of paired videos whose features come from random-weight CNNs.
RANDOM_WEIGHT_VIDEOS = "random_weight_videos"
_POOLING = {"fps": MODEL_FPS, "models": list(MODELS), "l2": "per-model", "dtype": "float16"}


def pairs_config(pooling: ClipPooling) -> dict[str, Any]:
    """The `clip_pairs` marker's config: how the vectors were pooled (a change rebuilds the shards)."""
    return {**pooling.config(), **_POOLING}


PAIRS_INPUTS = (ShardInput("clips", "fetch_captions"), ShardInput("frame_features", "extract_features"))
TEXT_INPUTS = (ShardInput("clip_pairs", "train_embedding (pairs)"),)


def ready_shards(root: DataRoot) -> list[int]:
    """Shards that both `clips` and `frame_features` have finished (markers present)."""
    clips = {m.shard for m in list_markers(root, "clips")}
    features = {m.shard for m in list_markers(root, "frame_features")}
    return sorted(clips & features)


# What writes each input of clip_pairs, as `howto` commands (tasks cannot import flows' stage table).
_PAIRS_UPSTREAM = (
    ("clips", "captions", "howto captions fetch"),
    ("frame_features", "features", "howto features run"),
)


def no_pairs_message(root: DataRoot) -> str:
    """Why the root has no clip_pairs and what to run first, the same for every stage that reads them.

    The train stage (`howto train`, `howto train compare`, the pipeline's train stage) pools clip_pairs
    from the clips and frame_features shards both stages finished: missing inputs come first."""
    missing = [
        (dataset, stage, cmd) for dataset, stage, cmd in _PAIRS_UPSTREAM if not list_markers(root, dataset)
    ]
    if missing:
        datasets = " or ".join(dataset for dataset, _, _ in missing)
        stages = " and ".join(f"the {stage} stage ({command})" for _, stage, command in missing)
        return (
            f"{root.url}: no clip_pairs shards, and no finished {datasets} shards to pool them from: "
            f"run {stages} first"
        )
    if not ready_shards(root):
        return (
            f"{root.url}: no clip_pairs shards, and clips and frame_features share no finished shard to pool "
            "them from: run the captions and features stages over the same videos shards"
        )
    return (
        f"{root.url}: no clip_pairs shards yet: run the train stage first (howto train, or howto train "
        "compare), which pools clips and frame_features into them"
    )


def pairs_job(root: DataRoot, shard: int, pooling: ClipPooling = REFERENCE_POOLING) -> ShardJob:
    """`clip_pairs` shard k from `clips` shard k and `frame_features` shard k."""
    config = pairs_config(pooling)

    def compute(_previous: pa.Table | None) -> ShardOutput:
        clips = read_shard(root, "clips", shard)
        features = read_shard(root, "frame_features", shard)
        if clips is None or features is None:
            raise FileNotFoundError(f"clips or frame_features shard {shard} is missing")
        table, drops = build_pairs(clips, features, pooling=pooling)
        # Which paired videos' features come from random-weight CNNs: the model card says so.
        ok_random = pc.and_(pc.equal(features.column("status"), "ok"), features.column("random_weights"))
        random = set(pc.unique(features.filter(ok_random).column("video_id")).to_pylist())
        paired = set(pc.unique(table.column("video_id")).to_pylist())
        extra = {RANDOM_WEIGHT_VIDEOS: len(random & paired)}
        return ShardOutput(table=table, rows_in=clips.num_rows, drops=drops, extra=extra)

    return ShardJob(
        "clip_pairs", shard, config_hash(config), compute, inputs=PAIRS_INPUTS,
        sort_by=[("video_id", "ascending"), ("idx", "ascending")], config=config,
    )  # fmt: skip


def build_pairs_shard(root: DataRoot, shard: int, pooling: ClipPooling = REFERENCE_POOLING) -> dict[str, Any]:
    """Write `clip_pairs` shard k from `clips` shard k and `frame_features` shard k."""
    return run_job(root, pairs_job(root, shard, pooling))


def cache_text_shard(
    root: DataRoot, shard: int, encode: Callable[[list[str]], np.ndarray], encoder: str = MINILM_NAME
) -> dict[str, Any]:
    """Write `text_embeddings` shard k: each clip's caption through the frozen sentence encoder, once."""

    def compute(_previous: pa.Table | None) -> ShardOutput:
        pairs = read_shard(root, "clip_pairs", shard)
        if pairs is None:
            raise FileNotFoundError(f"clip_pairs shard {shard} is missing")
        texts = pairs.column("text").to_pylist()
        unique = sorted(set(texts))  # captions repeat (steps drawn alike, stock phrases): encode each once
        vectors = encode(unique) if unique else np.zeros((0, 1), np.float32)
        where = {t: i for i, t in enumerate(unique)}
        matrix = vectors[[where[t] for t in texts]] if texts else vectors
        dim = matrix.shape[1] if matrix.ndim == 2 else 0
        column = pa.ListArray.from_arrays(
            pa.array(np.arange(len(texts) + 1, dtype=np.int32) * dim),
            pa.array(np.ascontiguousarray(matrix, dtype=np.float32).reshape(-1)),
        )
        table = pa.table(
            {
                "clip_id": pairs.column("clip_id"),
                "encoder": pa.array([encoder] * len(texts)),
                "vector": column,
            }
        )
        return ShardOutput(table=table, rows_in=len(texts), extra={"unique_texts": len(unique)})

    config = {"encoder": encoder}
    return run_job(
        root, ShardJob("text_embeddings", shard, config_hash(config), compute, TEXT_INPUTS, config=config)
    )


def text_cache(root: DataRoot, shard: int) -> pa.Table | None:
    """`text_embeddings` shard k, or None when it is missing or was made from another clip_pairs shard k than
    the root holds now: a run with another text side rebuilds the pairs (new captions, the same clip ids) but
    not this cache, whose vectors would then stand for the old captions. Markers from before inputs were
    recorded say nothing: they pass."""
    marker = valid_marker(root, "text_embeddings", shard)
    if marker is None:
        return None
    if marker.inputs and marker.inputs != input_fingerprints(root, shard, TEXT_INPUTS):
        log.info("text_embeddings shard %d was made from other clip_pairs; not read", shard)
        return None
    return read_shard(root, "text_embeddings", shard)


def require_pairs_pooled(root: DataRoot, pooling: ClipPooling, user: str) -> None:
    """Raise PoolingMismatch when clip_pairs hold vectors pooled otherwise than `user` (a run or checkpoint)
    expects: scores or training on them would be wrong without a sign."""
    wanted = config_hash(pairs_config(pooling))
    # Markers from before own_hash was recorded say nothing about pooling: they pass.
    stale = sorted(m.shard for m in list_markers(root, "clip_pairs") if m.own_hash and m.own_hash != wanted)
    if stale:
        raise PoolingMismatch(
            f"{root.url}: clip_pairs shards {stale} were pooled otherwise than {user} expects (clip_pool="
            f"{pooling.pool}, clip_context_s={pooling.context_s:g}); rebuild them with `howto train "
            f"--clip-pool {pooling.pool} --clip-context-s {pooling.context_s:g}`"
        )


class FeatureSpaceMismatch(ValueError):
    """The root's clip vectors are of another feature space than a checkpoint was trained on."""


def require_same_features(root: DataRoot, trained_on: Any, user: str) -> None:
    """Raise FeatureSpaceMismatch when `user` (a checkpoint) was trained on clip_pairs of other features than
    the root's clip_pairs now hold: frame_features made again with other weights, sizes or precision, the
    pairs rebuilt from them. Its scores on them (search-clips, held-out evaluation) would be noise without a
    sign. `trained_on` is the checkpoint's data snapshot (data_snapshot); one from before the features were
    recorded, or on the very pairs the root holds, passes."""
    if not isinstance(trained_on, dict) or not isinstance(trained_on.get("features"), dict):
        return
    trained = trained_on["features"]
    if not trained or trained_on.get("hash") in data_hashes(data_snapshot(root)):
        return
    current = recorded_features_config(root)
    if not current or current == trained:
        return
    changed = ", ".join(f"{k} {trained.get(k)!r} -> {current.get(k)!r}"
                        for k in sorted({*trained, *current}) if trained.get(k) != current.get(k))  # fmt: skip
    raise FeatureSpaceMismatch(
        f"{root.url}: {user} was trained on other features than the root's clip_pairs hold now ({changed}): "
        "its scores on them would mean nothing; train a run on them (howto train) or name one that was"
    )


def pairs_hash(per_shard: Mapping[str, Mapping[str, Any]]) -> str:
    """The hash of what a run trains on: its clip_pairs shards that hold pairs. A shard with none (a
    re-crawl's re-check shard, or new videos all dropped) changes nothing a run sees; counted, it gave
    a re-crawl that added no clip a new default run id, and the chain trained the same data again."""
    return config_hash({"shards": {k: v for k, v in per_shard.items() if v["rows"]}})


def earlier_pairs_hash(per_shard: Mapping[str, Mapping[str, Any]]) -> str:
    """The data hash runs were given before empty shards were left out (`pairs_hash`): a run trained or
    begun then is still found, resumed and read back under it."""
    return config_hash({"shards": dict(per_shard)})


def data_hashes(snapshot: Mapping[str, Any]) -> tuple[str, str]:
    """The data hashes a run trained on the clip_pairs of `snapshot` (data_snapshot) may carry: `pairs_hash`,
    and `earlier_pairs_hash` for a run trained or begun before empty shards were left out (the same when
    there is none); a run with either is on the root's data and must be found, read back and kept."""
    return snapshot["hash"], earlier_pairs_hash(snapshot["per_shard"])


def data_snapshot(root: DataRoot) -> dict[str, Any]:
    """What a run trained on: clip_pairs shards with their hashes and row counts, and one hash of it all;
    and how many of its videos have features from random weights (None: a shard written before this was
    recorded does not say); and the features config the root's frame_features were made with, which
    `howto eval` gives a benchmark's videos of this run (the root's may change after it)."""
    markers = list_markers(root, "clip_pairs")
    shards = {str(m.shard): {"config_hash": m.config_hash, "rows": m.rows_out} for m in markers}
    counts = [m.extra.get(RANDOM_WEIGHT_VIDEOS) for m in markers]
    return {
        "dataset": "clip_pairs",
        "shards": len(markers),
        "clips": sum(m.rows_out for m in markers),
        "hash": pairs_hash(shards),
        "empty_shards": sum(1 for m in markers if not m.rows_out),
        "per_shard": shards,
        RANDOM_WEIGHT_VIDEOS: None if None in counts else sum(int(c) for c in counts),
        "features": recorded_features_config(root),
    }
