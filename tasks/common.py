"""Hashes and versions that decide whether a shard's output is still valid."""

from __future__ import annotations

import hashlib
import json
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path
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
    """What code made a shard, recorded in every marker: `0.1.0+g<commit>` (`.dirty` with local edits).

    Outside a git checkout (an installed wheel) it is the package version alone.
    """
    try:
        version = metadata.version("howto")
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    commit = _git_commit(Path(__file__).resolve().parent.parent)
    return f"{version}+g{commit}" if commit else version


def _git_commit(checkout: Path) -> str | None:
    if not (checkout / ".git").exists():
        return None
    try:
        head = _git(checkout, "rev-parse", "--short=12", "HEAD")
        dirty = _git(checkout, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}.dirty" if dirty else head


def _git(checkout: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(checkout), *args], capture_output=True, text=True, timeout=10, check=True
    )
    return done.stdout.strip()
