"""Where an export may write: a new path, an empty folder, or a folder this tool exported into before.

An export replaces its output folder whole (tasks/exports/staging.py), so a folder is only taken when a
marker file says this tool made it: a user's folder, a plain file, the data root itself, a folder inside
the data root or one that holds it are refused, naming the folder, before anything is written.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from storage.layout import DataRoot

# Written into every export: what lets the next export of the same format replace the folder.
MARKER = ".howto-export.json"
TOOL = "howto"


class ExportRefused(Exception):
    """An output path (an export's folder, a report's, a features file) is not one this tool may write:
    the message names it and why."""


# What marks a folder as part of a data root, whichever root the command was given: a dataset version
# folder holds the shards' `_markers/`, the root itself the DuckDB catalog.
_ROOT_SIGNS = ("_markers", "catalog.duckdb")
# An object-store URL given as an output path: pathlib folds `s3://bucket/x` into the relative path `s3:/bucket/x`,
# which a write made into a local folder named `s3:` in the working directory.
_URL_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:/")


def read_marker(out: Path) -> dict[str, object] | None:
    """The marker of an export folder, or None when there is none (or it is not ours)."""
    try:
        data = json.loads((out / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("tool") == TOOL else None


def check_outside_root(root: DataRoot, out: Path, option: str = "--out", allow: Path | None = None) -> None:
    """Refuse `out` when it is a URL, the data root, inside it or holds it, or lies in any folder that is part of
    a data root (a dataset folder with `_markers/`, a root with `catalog.duckdb`): a write there would
    change or hide finished shards. `allow`: the one path inside the root that is fine (report's default).
    """
    if _URL_LIKE.match(str(out)):
        raise ExportRefused(
            f"{option} {out}: is a URL; {option} takes a local path (only --data-root may be an object store)"
        )
    here = Path(os.path.realpath(out))
    if allow is not None and here == Path(os.path.realpath(allow)):
        return
    if root.is_local:
        data = Path(os.path.realpath(root.url))
        if here == data:
            raise ExportRefused(f"{option} {out}: is the data root; choose a folder outside it")
        if data in here.parents:
            raise ExportRefused(
                f"{option} {out}: is inside the data root {root.url}; choose a folder outside it"
            )
        if here in data.parents:
            raise ExportRefused(f"{option} {out}: holds the data root {root.url}; choose a folder outside it")
    for folder in (here, *here.parents):
        for sign in _ROOT_SIGNS:
            if (folder / sign).exists():
                raise ExportRefused(
                    f"{option} {out}: is inside a data root ({folder / sign} is there); choose a folder outside it"
                )


def check_writable(out: Path, option: str = "--out", beside: bool = False) -> None:
    """Refuse `out` when it cannot be written: an existing folder that is not writable, or a new path (or
    a file to replace) whose nearest existing folder is a file or not writable. `beside`: the writer also
    makes temporary folders next to `out`, so its parent must be writable too. Checked with access(),
    which also reports a read-only mount, before anything is made."""
    targets = [Path(os.path.realpath(out)).parent] if beside else []  # beside the folder a link names
    if out.is_dir():
        targets.append(out)
    else:  # a new path, or a file replaced through a temp file beside it
        targets.append(out.parent)
    for target in targets:
        existing = target
        while not existing.exists() and existing.parent != existing:
            existing = existing.parent
        if not existing.is_dir():
            raise ExportRefused(f"{option} {out}: cannot be created: {existing} is a file, not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            what = "is" if existing == out else f"cannot be created: {existing} is"
            raise ExportRefused(f"{option} {out}: {what} not writable")


def check_no_symlinks(out: Path, option: str = "--out") -> None:
    """Refuse a folder to be written into that holds a symbolic link, at any depth: the writers open their
    files (and temp files) by name, so a link there (`features_2d` -> a folder of the user's, a
    `.tmp-shard-000000.tar` -> a file) made an export write over files outside its folder."""
    for folder, dirs, files in os.walk(out):  # a linked folder is listed, never entered
        for name in (*dirs, *files):
            if os.path.islink(os.path.join(folder, name)):
                raise ExportRefused(
                    f"{option} {out}: holds a symbolic link ({os.path.join(folder, name)}) that a write would "
                    "follow out of the folder; remove it or choose another folder"
                )


def check_target(root: DataRoot, out: Path, fmt: str, beside: bool = False) -> None:
    """Refuse `out` unless it is missing, an empty folder, or a previous `fmt` export made by this tool (with
    no symbolic link inside), outside any data root, not the working folder or above it, and writable
    (`beside`: see check_writable)."""
    check_outside_root(root, out)
    # An export replaces its folder whole (staging.py): `--out .` would swap the shell's working folder out
    # from under it (and `.`, `..` or `/` has no name to build a folder beside it by: a traceback).
    here, cwd = Path(os.path.realpath(out)), Path.cwd()
    if here == cwd or here in cwd.parents:
        where = "is the working folder" if here == cwd else "holds the working folder"
        raise ExportRefused(
            f"--out {out}: {where}, which an export would replace whole; name a folder to create or "
            f"replace (e.g. --out {fmt})"
        )
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise ExportRefused(f"--out {out}: exists and is not a folder; remove it or choose another --out")
        marker = read_marker(out)
        if marker is None:
            if any(out.iterdir()):
                raise ExportRefused(
                    f"--out {out}: exists, is not empty and is not an export made by {TOOL} (no {MARKER});"
                    " remove it or choose another --out"
                )
        elif marker.get("format") != fmt:
            raise ExportRefused(
                f"--out {out}: holds a {marker.get('format')} export, not {fmt}; remove it or choose another --out"
            )
        check_no_symlinks(out)
    check_writable(out, beside=beside)


def write_marker(out: Path, fmt: str) -> None:
    """Mark `out` as a `fmt` export of this tool (the folder must exist)."""
    (out / MARKER).write_text(json.dumps({"tool": TOOL, "format": fmt}) + "\n", encoding="utf-8")
