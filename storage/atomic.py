"""The one atomic writer: unique temp name beside the target, fsync, rename, fsync the folder."""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from storage.layout import DataRoot

TMP_PREFIX = ".tmp-"

# Test hook: called with the temp path between the temp write and the rename, so a test can
# simulate a crash there.
before_rename_hook: Callable[[str], None] | None = None


@contextmanager
def folder_lock(directory: str) -> Iterator[None]:
    """One writer at a time in a local folder: an exclusive flock on the folder itself (no lock file to
    leave behind; the kernel drops it when its holder dies, even by SIGKILL). Under it, temp files that
    writers of this kind leave are known to belong to writers that are gone."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def temp_path_for(path: str) -> str:
    """A unique temp name in the target's folder: two writers of one path never share a temp file."""
    directory, name = path.rsplit("/", 1)
    return f"{directory}/{TMP_PREFIX}{uuid.uuid4().hex}-{name}"


def is_temp_name(path: str) -> bool:
    return path.rsplit("/", 1)[-1].startswith(TMP_PREFIX)


def atomic_write(root: DataRoot, path: str, write: Callable[[IO[bytes]], None]) -> int:
    """Write `path` through `write(handle)` so readers see the old file or the whole new one; returns bytes.

    On a local file system the data and the rename are made durable (fsync of the file, then of the
    folder): after a power loss a marker never vouches for a file whose bytes were still in the page
    cache. Object stores have no rename; fsspec's `mv` is copy-then-delete there, and their writes are
    all-or-nothing anyway.
    """
    directory = path.rsplit("/", 1)[0]
    root.makedirs(directory)
    tmp = temp_path_for(path)
    try:
        with root.open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            if root.is_local:
                os.fsync(handle.fileno())
        size = int(root.fs.size(tmp))
        if before_rename_hook is not None:
            before_rename_hook(tmp)
        if root.is_local:
            os.replace(tmp, path)
            fsync_dir(directory)
        else:
            root.fs.mv(tmp, path)
    except BaseException:
        # A failed write (full disk, read-only root, a kill) leaves no half-written temp file behind.
        _remove_quietly(root, tmp)
        raise
    return size


def atomic_write_bytes(root: DataRoot, path: str, payload: bytes) -> int:
    """`atomic_write` of a byte string."""

    def write(handle: IO[bytes]) -> None:
        handle.write(payload)

    return atomic_write(root, path, write)


def link_or_write_bytes(root: DataRoot, path: str, source: str, payload: bytes) -> str:
    """Put at `path` the file `source` whose bytes are `payload`: a hard link where `root` is local and on
    `source`'s file system (no copy, no fsync of hundreds of MB), else an atomic write of `payload`.
    Returns "linked" or "written". Sound only for files never changed in place: every writer here
    replaces a path by rename, which leaves the other name on the old, whole file."""
    if root.is_local:
        directory = path.rsplit("/", 1)[0]
        root.makedirs(directory)
        tmp = temp_path_for(path)
        try:
            os.link(source, tmp)
            os.replace(tmp, path)
        except OSError:  # another file system (EXDEV), links refused (EPERM), a source gone meanwhile
            _remove_quietly(root, tmp)
        else:
            fsync_dir(directory)
            return "linked"
    atomic_write_bytes(root, path, payload)
    return "written"


def read_json_or_none(root: DataRoot, path: str) -> Any:
    """The JSON value of a small bookkeeping file (written whole with atomic_write_bytes), or None when it is
    missing or cannot be read or parsed (a damaged disk, a file cut short by hand): its reader starts over
    from nothing rather than failing the stage."""
    if not root.exists(path):
        return None
    try:
        with root.open(path, "rb") as handle:
            return json.loads(handle.read().decode())
    except (OSError, ValueError, RecursionError):
        return None


def fsync_dir(directory: str) -> None:
    """Make a rename in `directory` durable (POSIX needs the folder itself synced)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on folders; the data itself was synced
    finally:
        os.close(fd)


def remove_temp_files(root: DataRoot, directory: str) -> int:
    """Delete leftovers of interrupted writes in one folder; returns how many were removed."""
    found = temp_files(root, directory)
    for path in found:
        _remove_quietly(root, path)
    return len(found)


def temp_target(path: str) -> str | None:
    """The name of the file a temp file of `temp_path_for` was written for (None for any other name)."""
    name = path.rsplit("/", 1)[-1]
    if not name.startswith(TMP_PREFIX):
        return None
    uid, sep, target = name[len(TMP_PREFIX) :].partition("-")
    return target if sep and len(uid) == 32 and target else None


def temp_files(root: DataRoot, directory: str) -> list[str]:
    """The temp files of writes in one folder, in one listing: a folder of a million kept files (`vtt/`) is read
    by names alone where local, and only the keys under the temp prefix are listed on an object store."""
    if root.is_local:
        try:
            with os.scandir(directory) as entries:
                names = [e.name for e in entries if e.name.startswith(TMP_PREFIX) and e.is_file()]
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(f"{directory}/{name}" for name in names)
    if not root.exists(directory):
        return []
    # s3fs and gcsfs filter by `prefix` on the server; other file systems ignore it (hence the check by name).
    found = root.fs.find(directory, maxdepth=1, prefix=TMP_PREFIX)
    return sorted(p for p in found if is_temp_name(p))


def remove_temp_files_of(root: DataRoot, directory: str, owned: Callable[[str], bool]) -> list[str]:
    """Delete the temp files in `directory` of interrupted writes of the files whose names `owned` claims, and
    of no other: a caller that holds what every writer of those files holds (a shard's lock) knows theirs
    belong to dead writers, while the other files' writers may be writing now. Returns their paths."""
    removed = []
    for path in temp_files(root, directory):
        target = temp_target(path)
        if target is not None and owned(target):
            _remove_quietly(root, path)
            removed.append(path)
    return removed


def remove_stale_temp_files(root: DataRoot, directory: str, older_than_s: float) -> list[str]:
    """Delete the temp files in `directory` last written over `older_than_s` ago, and no newer one: for
    folders of small files written whole (info files, plans) that no lock covers, where a newer temp file
    may be a live write of a run beside this one (its rename then failed, and its shard task with it), but
    a write that old is a dead writer's. Returns their paths."""
    removed = []
    now = time.time()
    for path in temp_files(root, directory):
        try:
            written = os.stat(path).st_mtime if root.is_local else root.fs.modified(path).timestamp()
        except (OSError, NotImplementedError, ValueError):
            continue  # gone meanwhile (its rename) or of unknown age: left alone
        if now - written > older_than_s:
            _remove_quietly(root, path)
            removed.append(path)
    return removed


def _remove_quietly(root: DataRoot, path: str) -> None:
    try:
        if root.exists(path):
            root.fs.rm(path)
    except OSError:
        pass
