"""Where an export may write: a new path, an empty folder, or a folder this tool exported into before.

An export replaces (hf) or writes over (webdataset, howto100m) what is in its output folder, so a folder
is only taken when a marker file says this tool made it: a user's folder, a plain file, the data root
itself, a folder inside the data root or one that holds it are refused, naming the folder, before
anything is written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from storage.layout import DataRoot

# Written into every export, first thing: a killed export leaves a folder the next run may still take.
MARKER = ".howto-export.json"
TOOL = "howto"


class ExportRefused(Exception):
    """The output folder is not one an export may write into: the message names it and why."""


def read_marker(out: Path) -> dict[str, object] | None:
    """The marker of an export folder, or None when there is none (or it is not ours)."""
    try:
        data = json.loads((out / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("tool") == TOOL else None


def check_target(root: DataRoot, out: Path, fmt: str) -> None:
    """Refuse `out` unless it is missing, an empty folder, or a previous `fmt` export made by this tool."""
    if root.is_local:
        here, data = Path(os.path.realpath(out)), Path(os.path.realpath(root.url))
        if here == data:
            raise ExportRefused(f"--out {out}: is the data root; choose a folder outside it")
        if data in here.parents:
            raise ExportRefused(
                f"--out {out}: is inside the data root {root.url}; choose a folder outside it"
            )
        if here in data.parents:
            raise ExportRefused(f"--out {out}: holds the data root {root.url}; choose a folder outside it")
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir():
        raise ExportRefused(f"--out {out}: exists and is not a folder; remove it or choose another --out")
    marker = read_marker(out)
    if marker is None:
        if any(out.iterdir()):
            raise ExportRefused(
                f"--out {out}: exists, is not empty and is not an export made by {TOOL} (no {MARKER});"
                " remove it or choose another --out"
            )
        return
    if marker.get("format") != fmt:
        raise ExportRefused(
            f"--out {out}: holds a {marker.get('format')} export, not {fmt}; remove it or choose another --out"
        )


def write_marker(out: Path, fmt: str) -> None:
    """Mark `out` as a `fmt` export of this tool (the folder must exist)."""
    (out / MARKER).write_text(json.dumps({"tool": TOOL, "format": fmt}) + "\n", encoding="utf-8")
