"""An export built in a folder beside its `--out` and swapped in whole once it is complete.

Written over in place, a re-export left the earlier export's files it did not write again (a tar shard past
the new count, `features_2d/<id>.npy` of a video now filtered out: a `--split train` export over an earlier
one kept the held-out clips), and a killed or failed one left a mix of new and old files that looked
finished. Built beside and renamed in, readers and a crash see the previous export or the new one, whole.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from storage.atomic import TMP_PREFIX, folder_lock

# `.tmp-<format>-new-<hex>-<out name>` is an export being built, `.tmp-<format>-old-<hex>-<out name>` the previous
# one renamed aside for the swap. Matched whole, so `rel`'s leftovers are never taken for `my-rel`'s.
_LEFTOVER = re.compile(
    rf"{re.escape(TMP_PREFIX)}(?P<fmt>[a-z0-9]+)-(?P<kind>new|old)-[0-9a-f]{{32}}-(?P<name>.+)"
)


def _aside(out: Path, fmt: str, kind: str) -> Path:
    return out.with_name(f"{TMP_PREFIX}{fmt}-{kind}-{uuid.uuid4().hex}-{out.name}")


def swap_in(staged: Path, out: Path, fmt: str) -> None:
    """Put the finished export in place of the previous one (a kill between the two renames leaves the
    previous one under its old-name, which `recover` puts back)."""
    if not out.exists():
        os.rename(staged, out)
        return
    old = _aside(out, fmt, "old")
    os.rename(out, old)
    os.rename(staged, out)
    shutil.rmtree(old, ignore_errors=True)


def recover(out: Path, fmt: str) -> None:
    """Under the folder lock (so every leftover is a dead writer's): put back a previous export of `out`
    that a kill left renamed aside, and remove `out`'s half-built exports and the format's caches."""
    for path in out.parent.glob(f"{TMP_PREFIX}{fmt}-*"):
        found = _LEFTOVER.fullmatch(path.name)
        if found is None or found["fmt"] != fmt:
            if path.name.startswith(f"{TMP_PREFIX}{fmt}-cache-"):
                shutil.rmtree(path, ignore_errors=True)
            continue
        if found["name"] != out.name:
            continue
        if found["kind"] == "old" and not out.exists():
            os.rename(path, out)
        else:
            shutil.rmtree(path, ignore_errors=True)


@contextmanager
def staged_export(out: Path, fmt: str) -> Iterator[Path]:
    """A new path beside `out` (not yet made) to build the `fmt` export in; swapped in for `out` when the
    block ends normally, removed when it raises (Ctrl-C included). One export into a folder at a time:
    the whole build holds the lock on `out`'s parent (made if missing)."""
    # A link given as --out is followed: the export is built beside the folder it names (on that file system)
    # and the link goes on naming it. Swapped by the link's own name, the link became a folder on the link's
    # file system and the earlier export stayed behind a hidden name (rmtree never removes through a link).
    out = Path(os.path.realpath(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(str(out.parent)):
        recover(out, fmt)
        staged = _aside(out, fmt, "new")
        try:
            yield staged
            swap_in(staged, out, fmt)
        finally:
            shutil.rmtree(staged, ignore_errors=True)
