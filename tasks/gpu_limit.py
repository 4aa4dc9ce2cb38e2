"""Which GPU a CUDA shard or training run uses: one of its machine's GPUs held alone, and a slot of the
`gpu` global concurrency limit (an error when that limit is missing).

The limit admits as many CUDA runs as there are GPUs over all machines, but it picks no card: without
more, every run on a machine would take `cuda` (its first GPU), leaving the others idle and putting two
runs on one card. So each run also locks one GPU of its own machine (a lock file per GPU, named by the
card's UUID, so two processes that see the cards under different CUDA_VISIBLE_DEVICES still agree) and
runs there; while every GPU of the machine is held, it waits. The kernel drops a dead process's lock.

The lock folder is shared by every user of the machine on purpose (their GPU runs must see each other's locks),
so it is made like /tmp: world-writable and sticky (1777), so that no user can delete or replace another's lock
files, but for the folder's owner (the user whose run made it: the sticky bit never binds a folder's owner, as
it does not bind root in /tmp). A lock file is opened without following a link and never truncated: a link
planted there (to a file of yours) made the run empty that file and write its pid into it.

Prefect's own guard skips a limit that does not exist with a warning, so a forgotten setup would let every
worker on a GPU machine pile onto the same card. `howto deploy` creates the limit; without it a CUDA stage
stops before it starts, saying how to create it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import pwd
import re
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from storage.private_temp import UnsafeTempFolder

GPU_LIMIT = "gpu"
LOCK_DIR_ENV = "HOWTO_GPU_LOCK_DIR"
SHARED_MODE = 0o1777  # every user's runs make their locks in the folder; none may remove another's
log = logging.getLogger(__name__)


class GpuLimitMissing(RuntimeError):
    """The global concurrency limit that guards the GPUs is missing or switched off."""


def check_gpu_limit(name: str = GPU_LIMIT) -> int:
    """The limit's number of slots; raises GpuLimitMissing when it does not exist or is inactive."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    fix = f"run `howto deploy` or `prefect gcl create {name} --limit N` (N: GPUs per machine)"
    try:
        with get_client(sync_client=True) as client:
            limit = client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        raise GpuLimitMissing(f"Prefect global concurrency limit {name!r} does not exist: {fix}") from None
    if not limit.active:
        raise GpuLimitMissing(f"Prefect global concurrency limit {name!r} is inactive: {fix}")
    return int(limit.limit)


# Machine-wide on purpose: not under $TMPDIR, which a login (pam_tmpdir) or a batch job (Slurm) may make per
# user or per job, so that runs there would never see each other's locks and share a card.
DEFAULT_LOCK_DIR = Path("/tmp/howto-gpu-locks")


def default_lock_dir() -> Path:
    """Where this machine's GPU locks live: $HOWTO_GPU_LOCK_DIR, else /tmp/howto-gpu-locks."""
    return Path(os.environ.get(LOCK_DIR_ENV) or DEFAULT_LOCK_DIR)


def requested_index(device: str) -> int | None:
    """N of "cuda:N"; None for "cuda" (any free GPU of this machine)."""
    kind, _, index = device.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise ValueError(f"not a CUDA device: {device!r} (use cuda or cuda:N)")
    return int(index) if index else None


@contextlib.contextmanager
def local_gpu(
    gpus: Sequence[str], wanted: int | None = None, lock_dir: Path | None = None, poll_s: float = 2.0
) -> Iterator[int]:
    """Hold one of this machine's GPUs alone; yields its index among `gpus` (the visible devices' ids).

    `wanted`: that GPU only; None: the first free one. Waits, polling every `poll_s`, while they are held.
    """
    if not gpus:
        raise ValueError("no CUDA device is visible to this process")
    if wanted is not None and not 0 <= wanted < len(gpus):
        raise ValueError(f"cuda:{wanted} asked for, but this process sees {len(gpus)} CUDA device(s)")
    base = lock_dir or default_lock_dir()
    candidates = [wanted] if wanted is not None else list(range(len(gpus)))
    waiting_since: float | None = None
    while True:
        # Checked each round: a folder removed while this run waits (its owner may, as shared_lock_folder's refusals
        # advise) is made again, where once every later open of a lock file in it failed and was retried at once,
        # forever, at full CPU. The locks of runs still holding cards went with it: they are not seen.
        folder = shared_lock_folder(base)
        for index in candidates:
            try:
                fd = open_lock_file(folder / f"{re.sub(r'[^A-Za-z0-9._-]', '_', gpus[index])}.lock")
            except FileNotFoundError:  # the folder went since the check: made again next round
                break
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                _note_holder(fd)
                if waiting_since is not None:
                    log.info("GPU %d of this machine is free after %.0f s; running there", index,
                             time.monotonic() - waiting_since)  # fmt: skip
                yield index
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            return
        if waiting_since is None:
            waiting_since = time.monotonic()
            which = f"GPU {wanted}" if wanted is not None else f"all {len(gpus)} GPU(s)"
            log.warning("%s of this machine busy with other runs (locks in %s); waiting", which, folder)
        time.sleep(poll_s)


def shared_lock_folder(folder: Path) -> Path:
    """`folder`, made 1777 (world-writable, sticky: like /tmp) when missing, or when it is ours and holds only
    locks (see _open_to_all); UnsafeTempFolder when what is there is a link, not a folder, a folder others may
    write without the sticky bit (they could delete or replace the lock files in it, or plant links there), or
    another user's folder this user cannot make lock files in."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(folder, SHARED_MODE)
        os.chmod(folder, SHARED_MODE)  # the umask narrowed it; the sticky bit is there from the start
    except FileExistsError:
        pass
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode):
        what = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a folder"
        raise UnsafeTempFolder(f"GPU lock folder {folder}: {what}; remove it (another user may have made it)")
    mode = stat.S_IMODE(info.st_mode)
    ours = info.st_uid == os.geteuid()
    if ours and mode != SHARED_MODE and _holds_only_locks(folder):
        mode = _open_to_all(folder, mode)
    owner = _user(info.st_uid)
    asked = owner if owner == "root" else f"{owner} or root"
    fix = "chmod 1777 it (or remove it)" if ours else f"ask {asked} to chmod 1777 it"
    if mode & (stat.S_IWGRP | stat.S_IWOTH) and not mode & stat.S_ISVTX:
        raise UnsafeTempFolder(
            f"GPU lock folder {folder}: writable by others but not sticky (mode {mode:o}), so any user can"
            f" delete or replace the locks in it: {fix} and run again"
        )
    if not ours and not os.access(folder, os.W_OK | os.X_OK):
        raise UnsafeTempFolder(
            f"GPU lock folder {folder}: {owner}'s (mode {mode:o}), so this user's runs cannot make their lock"
            f" files in it: {fix} (or to remove it: the next run makes it 1777), then run again"
        )
    return folder


def _holds_only_locks(folder: Path) -> bool:
    """Whether `folder` holds nothing but lock files: a folder made for the locks, not one of the user's
    (HOWTO_GPU_LOCK_DIR set to a folder in use), which is never opened to all."""
    return all(name.endswith(".lock") for name in os.listdir(folder))


def _open_to_all(folder: Path, mode: int) -> int:
    """Make our lock folder 1777: older howto made it with the umask (0755), and other users' runs could not
    make their lock files in it. Changed through a descriptor opened without following a link, so the
    folder checked is the folder changed."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fchmod(fd, SHARED_MODE)
    finally:
        os.close(fd)
    log.warning("GPU lock folder %s: mode %o made %o (world-writable, sticky, like /tmp) so that other users'"
                " runs can lock in it", folder, mode, SHARED_MODE)  # fmt: skip
    return SHARED_MODE


def _user(uid: int) -> str:
    """The name of user `uid`, or `uid N` when it has none here."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def open_lock_file(path: Path) -> int:
    """A descriptor of the lock file at `path`, created if missing (0644), never through a link (O_NOFOLLOW)
    and never truncated; read-only when it is another user's (a read-only descriptor locks as well).
    UnsafeTempFolder when `path` is a link or not a regular file (a FIFO is opened without blocking, a folder or
    a socket not at all); FileNotFoundError when its folder is gone."""
    flags = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    while True:
        try:
            try:  # FileNotFoundError here: the folder itself is gone, which no retry of this open mends
                return _regular(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | flags, 0o644), path)
            except FileExistsError:
                pass
            try:
                try:
                    return _regular(os.open(path, os.O_RDWR | flags), path)
                except PermissionError:
                    # Another user's file: read-only, and without O_CREAT (fs.protected_regular refuses that).
                    return _regular(os.open(path, os.O_RDONLY | flags), path)
            except FileNotFoundError:  # removed by its owner between our two opens: create it again
                continue
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafeTempFolder(
                    f"GPU lock file {path}: a symbolic link, not followed; remove it (another user may have"
                    " planted it)"
                ) from None
            # A folder made in its place, or a UNIX socket bound there (open gives ENXIO): anyone may make either.
            if exc.errno in (errno.EISDIR, errno.ENXIO):
                raise _not_regular(path) from None
            raise


def _regular(fd: int, path: Path) -> int:
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _not_regular(path)
    return fd


def _not_regular(path: Path) -> UnsafeTempFolder:
    return UnsafeTempFolder(
        f"GPU lock file {path}: not a regular file; remove it (another user may have made it)"
    )


def _note_holder(fd: int) -> None:
    """Write our pid at the start of the lock file, for whoever looks which process holds the card: only into a
    file of ours with no other name (a hard link planted to a file of yours is left alone), fixed-width so
    nothing needs truncating."""
    info = os.fstat(fd)
    writable = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDWR
    if writable and info.st_uid == os.geteuid() and info.st_nlink == 1:
        os.pwrite(fd, f"pid {os.getpid():<10}\n".encode(), 0)


@contextlib.contextmanager
def gpu_slot(
    device: str, gpus: Callable[[], Sequence[str]], name: str = GPU_LIMIT, lock_dir: Path | None = None
) -> Iterator[str]:
    """Where a run's CUDA work goes: one GPU of this machine held alone, then a slot of the `gpu` limit;
    yields the device to use ("cuda:N"). A CPU `device` passes through unchanged and needs neither.

    `gpus`: gives the visible CUDA devices' ids (models.encoders.cuda_device_ids), called for CUDA only,
    so CPU work never initialises CUDA. The limit is checked before waiting for a local GPU, so a missing
    limit fails at once.
    """
    if not device.startswith("cuda"):
        yield device
        return
    from prefect.concurrency.sync import concurrency

    check_gpu_limit(name)
    with local_gpu(gpus(), requested_index(device), lock_dir) as index:
        with concurrency(name, occupy=1, strict=True):  # strict: a limit deleted meanwhile is an error too
            yield f"cuda:{index}"
