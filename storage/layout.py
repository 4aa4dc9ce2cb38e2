"""Data root layout: where each dataset's shards and markers live, local path or fsspec URL."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

DEFAULT_DATA_ROOT = "./data"
# URL prefixes that name a local folder: the data root keeps the plain path.
LOCAL_PREFIXES = ("file://", "local://")
DATA_ROOT_ENV = "HOWTO_DATA_ROOT"
# Below this much free space a stage refuses to start: a shard, its marker and the catalog need room,
# and a write that fails half-way on a full disk costs a rerun.
MIN_FREE_BYTES = 64 * 2**20


# Errors of a write, never of a read: ENOSPC, EROFS, EDQUOT.
ROOT_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EDQUOT})


class DataRootProblem(Exception):
    """The data root cannot be used (a file, read-only, full, missing): the message names the root."""


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
        # file:// is a local path by another name: kept as the path, every local check (os.path, the
        # export and report guards) sees the folder itself, not a URL it cannot find.
        for prefix in LOCAL_PREFIXES:
            if raw.startswith(prefix):
                raw = raw[len(prefix) :] or "/"
                break
        if "://" not in raw:
            raw = os.path.abspath(os.path.expanduser(raw))
        return cls(raw.rstrip("/") or "/")

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        # No listing cache on an object store: s3fs and gcsfs keep every folder listing for the life of
        # the filesystem (the process), so markers and shards that other processes (workers, stages run
        # elsewhere) wrote since would never show up in it: not in list_markers, and not in exists(),
        # which answers from a cached listing of the parent folder.
        remote = "://" in self.url and not self.url.startswith(LOCAL_PREFIXES)
        try:
            fs, _ = fsspec.core.url_to_fs(self.url, **({"use_listings_cache": False} if remote else {}))
        except ImportError as exc:  # a known protocol whose package is not installed (s3fs, gcsfs)
            raise DataRootProblem(f"data root {self.url}: {exc}") from exc
        except ValueError as exc:  # "Protocol not known: foo"
            protocol = self.url.split("://", 1)[0]
            raise DataRootProblem(
                f"data root {self.url}: unknown protocol {protocol!r}; give a local path or an fsspec URL "
                "(s3://, gs://, ...)"
            ) from exc
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


def check_data_root(root: DataRoot, *, write: bool = True, min_free_bytes: int = MIN_FREE_BYTES) -> None:
    """Refuse a data root that cannot take the work, before any network or compute is spent.

    Nothing is created. With `write`, a probe file is written and synced in a local root (or, for a root
    not made yet, the nearest folder that exists must be writable), which is what catches a read-only
    mount or a full disk; without it the root must already exist (a mistyped root is an error, not a new
    empty dataset). An object-store root is listed once: what stops every request to it (no credentials,
    access denied, an endpoint that does not answer) is named here, not in a library's traceback.
    """
    if not root.is_local:
        _list_remote_root(root)
        return
    path = root.url
    if os.path.exists(path) and not os.path.isdir(path):
        raise DataRootProblem(f"data root {path} is a file, not a folder")
    if not write:
        if not os.path.isdir(path):
            raise DataRootProblem(f"no data root at {path}")
        return
    existing = _nearest_existing(path)
    if not os.path.isdir(existing):
        raise DataRootProblem(f"data root {path}: {existing} is a file, not a folder")
    if existing != path:
        if not os.access(existing, os.W_OK | os.X_OK):  # access() also reports a read-only mount
            raise DataRootProblem(f"data root {path} cannot be created: {existing} is not writable")
    else:
        try:
            _write_probe(path)
        except OSError as exc:
            raise DataRootProblem(describe_os_error(path, exc)) from exc
    free = shutil.disk_usage(existing).free
    if free < min_free_bytes:
        raise DataRootProblem(
            f"data root {path}: only {free / 2**20:.0f} MiB free (need {min_free_bytes / 2**20:.0f} MiB); "
            "free some space and run again"
        )


def _list_remote_root(root: DataRoot) -> None:
    try:
        root.fs.ls(root.url, detail=False)
    except FileNotFoundError:
        return  # a root not made yet: the stages create it, the read commands find no datasets there
    except Exception as exc:  # noqa: BLE001 - s3fs, gcsfs, ... raise their own types (botocore's NoCredentialsError)
        message = " ".join(str(exc).split()) or "no message"
        raise DataRootProblem(
            f"data root {root.url} cannot be read ({type(exc).__name__}: {message}); check its credentials "
            "and endpoint (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ... for s3://)"
        ) from exc


def _nearest_existing(path: str) -> str:
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _write_probe(directory: str) -> None:
    # An unnamed temp file (O_TMPFILE on Linux; elsewhere created and unlinked at once): a kill at any
    # moment leaves nothing behind in the data root, unlike a named probe removed in a `finally`.
    with tempfile.TemporaryFile(dir=directory) as handle:
        handle.write(b"howto")
        handle.flush()
        os.fsync(handle.fileno())


def describe_os_error(path: str, exc: OSError) -> str:
    """A one-line reason for a failed write under the data root, naming the root, not the input."""
    if exc.errno == errno.ENOSPC:
        return f"data root {path}: no space left on device"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"data root {path} is not writable ({os.strerror(exc.errno)})"
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return f"data root {path} is a file, not a folder"
    return f"data root {path}: {exc.strerror or exc}"
