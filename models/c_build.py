"""Our C kernels (models/csrc/) compiled here on first use: gcc or $CC, about a second, into a cache folder
keyed by the source, the flags and the compiler, so that a changed file or another compiler builds anew and
an unchanged one is never built twice. The libraries are loaded with ctypes after torch, so that their
OpenMP threads are torch's own. Where nothing can compile, the callers keep their torch paths."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path


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
