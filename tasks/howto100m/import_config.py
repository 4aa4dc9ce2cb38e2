"""The import's typed config and its batch id: a hash of the config and of the release files' content."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tasks.common import config_hash


class ImportConfig(BaseModel):
    """What decides the imported rows: the files' content, the shard size and the crawl label."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    csv: str
    task_ids: str
    captions: str
    features_2d: str | None = None
    features_3d: str | None = None
    # caption.json had its stop words removed (text_no_stopwords = text); raw_caption.json kept them.
    caption_source: Literal["auto", "caption.json", "raw_caption.json"] = "auto"
    videos_per_shard: int = Field(
        default=100, ge=1, description="videos per shard (its features sit in memory)"
    )
    task_shard_size: int = Field(default=5000, ge=1)
    crawl_id: str = "howto100m"

    def source(self) -> str:
        if self.caption_source != "auto":
            return self.caption_source
        return "raw_caption.json" if "raw" in Path(self.captions).name.lower() else "caption.json"


def file_fingerprint(path: str, whole_below: int = 256 << 20) -> str:
    """Content hash; a multi-GB file is hashed by its size and first and last 4 MiB (seconds, not minutes)."""
    size = os.path.getsize(path)
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        if size <= whole_below:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        else:
            digest.update(handle.read(4 << 20))
            handle.seek(size - (4 << 20))
            digest.update(handle.read())
    return digest.hexdigest()[:16]


def batch_of(cfg: ImportConfig) -> str:
    files = {name: file_fingerprint(getattr(cfg, name)) for name in ("csv", "task_ids", "captions")}
    return config_hash({**cfg.model_dump(mode="json", exclude={"csv", "task_ids", "captions"}), **files,
                        "source": cfg.source()})  # fmt: skip
