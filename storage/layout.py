"""Data root layout: where each dataset's shards and markers live, local path or fsspec URL."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

DEFAULT_DATA_ROOT = "./data"
DATA_ROOT_ENV = "HOWTO_DATA_ROOT"


def resolve_data_root(explicit: str | os.PathLike[str] | None = None) -> str:
    """The data root from an explicit value, then $HOWTO_DATA_ROOT, then ./data."""
    if explicit:
        return str(explicit)
    return os.environ.get(DATA_ROOT_ENV) or DEFAULT_DATA_ROOT


@dataclass(frozen=True)
class DataRoot:
    """A data root: `{root}/{dataset}/v{N}/part-{shard:05d}.parquet` plus `_markers/` beside the shards."""

    url: str

    @classmethod
    def from_any(cls, value: DataRoot | str | os.PathLike[str] | None = None) -> DataRoot:
        if isinstance(value, DataRoot):
            return value
        raw = resolve_data_root(value)
        if "://" not in raw:
            raw = os.path.abspath(os.path.expanduser(raw))
        return cls(raw.rstrip("/"))

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        fs, _ = fsspec.core.url_to_fs(self.url)
        return fs

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    def path(self, *parts: str) -> str:
        """A path under the root, in the root's own form (local path or URL)."""
        return "/".join([self.url, *parts])

    def dataset_dir(self, dataset: str, version: int) -> str:
        return self.path(dataset, f"v{version}")

    def shard_path(self, dataset: str, version: int, shard: int) -> str:
        return f"{self.dataset_dir(dataset, version)}/part-{shard:05d}.parquet"

    def marker_path(self, dataset: str, version: int, shard: int) -> str:
        return f"{self.dataset_dir(dataset, version)}/_markers/part-{shard:05d}.json"

    def shard_glob(self, dataset: str, version: int) -> str:
        return f"{self.dataset_dir(dataset, version)}/part-*.parquet"

    def catalog_path(self) -> str:
        return self.path("catalog.duckdb")

    def open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        return self.fs.open(path, mode, **kwargs)

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(path))

    def makedirs(self, path: str) -> None:
        self.fs.makedirs(path, exist_ok=True)
