"""Hashes and versions that decide whether a shard's output is still valid."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib import metadata
from typing import Any

from pydantic import BaseModel


def config_hash(cfg: BaseModel | dict[str, Any], exclude: set[str] | None = None) -> str:
    """A short stable hash of the config fields that change a stage's output.

    Fields that only change how politely or how fast we work (rate, concurrency, cookies) belong in
    `exclude` so that changing them never reruns finished shards.
    """
    data = cfg.model_dump(mode="json", exclude=exclude) if isinstance(cfg, BaseModel) else dict(cfg)
    if exclude and not isinstance(cfg, BaseModel):
        data = {k: v for k, v in data.items() if k not in exclude}
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def shard_hash(own_hash: str, *upstream_hashes: str | None) -> str:
    """Chain a stage's config hash with its inputs' hashes: an upstream change reruns this shard."""
    blob = "|".join([own_hash, *(h or "-" for h in upstream_hashes)])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@lru_cache(maxsize=1)
def code_version() -> str:
    """The installed package version, recorded in every marker."""
    try:
        return metadata.version("howto")
    except metadata.PackageNotFoundError:
        return "0+unknown"
