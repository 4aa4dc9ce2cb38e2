"""Our C kernels (models/csrc/) compiled here on first use: gcc or $CC, about a second, into a cache folder
keyed by the source, the flags and the compiler, so that a changed file or another compiler builds anew and
an unchanged one is never built twice. The libraries are loaded with ctypes after torch, so that their
OpenMP threads are torch's own. Where nothing can compile, the callers keep their torch paths."""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)


class KernelUnavailable(RuntimeError):
    """A kernel cannot be built or loaded here (the message says why)."""


def cache_dir() -> Path:
    """Where built kernels are kept: $HOWTO_KERNEL_CACHE, else ~/.cache/howto/kernels."""
    env = os.environ.get("HOWTO_KERNEL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "howto" / "kernels"


def compiler() -> str:
    """$CC where set, else gcc; KernelUnavailable when it is not on PATH."""
    name = os.environ.get("CC") or "gcc"
    found = shutil.which(name)
    if found is None:
        raise KernelUnavailable(f"no C compiler: {name!r} is not on PATH (install gcc, or set CC)")
    return found


def build(source: Path, flags: Sequence[str], directory: Path | None = None) -> Path:
    """`source` compiled with `flags` into a shared library in `directory` (default cache_dir()) unless
    already there. Written under a temporary name and renamed: a concurrent builder never loads a
    half-written file."""
    cc = compiler()
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KernelUnavailable(f"{cc} --version failed: {exc}") from exc
    key = hashlib.sha256("\0".join([source.read_text(), " ".join(flags), version]).encode()).hexdigest()[:16]
    directory = directory or cache_dir()
    target = directory / f"{source.stem}-{key}.so"
    if target.is_file():
        return target
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory) as scratch:
            out = Path(scratch) / target.name
            done = subprocess.run(
                [cc, *flags, "-o", str(out), str(source)], capture_output=True, text=True, timeout=300
            )
            if done.returncode != 0:
                first = (done.stderr.strip().splitlines() or ["no output"])[0]
                raise KernelUnavailable(f"{cc} could not compile {source.name}: {first}")
            os.replace(out, target)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KernelUnavailable(f"building {source.name} in {directory} failed: {exc}") from exc
    return target


def load(library: Path) -> ctypes.CDLL:
    """A built library, loaded; KernelUnavailable where the loader refuses it."""
    try:
        return ctypes.CDLL(str(library))
    except OSError as exc:
        raise KernelUnavailable(f"the built kernel does not load: {exc}") from exc


def declare(lib: ctypes.CDLL, name: str, restype: type | None, argtypes: Sequence[type]) -> None:
    """Tell ctypes the C signature of `lib`'s function `name` (it would guess ints otherwise)."""
    function = getattr(lib, name)
    function.restype, function.argtypes = restype, list(argtypes)


def runs_here(loader: Callable[[], object], what: str, instead: str) -> bool:
    """Whether `loader` (a kernel's cached loader) succeeds here; why not is logged once, with what runs
    `instead`."""
    try:
        loader()
    except KernelUnavailable as exc:
        _log_once(what, str(exc), instead)
        return False
    return True


@functools.cache
def _log_once(what: str, reason: str, instead: str) -> None:
    log.info("%s not used (%s): %s", what, reason, instead)
