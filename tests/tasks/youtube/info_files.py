"""The real youtube-dl / yt-dlp info files under tests/fixtures/ytdlp_info (provenance in its SOURCES.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

INFO_DIR = Path(__file__).parents[2] / "fixtures" / "ytdlp_info"


def load_info(name: str) -> dict[str, Any]:
    """A fresh copy of `{name}.info.json`: tests may edit it."""
    return json.loads((INFO_DIR / f"{name}.info.json").read_text(encoding="utf-8"))
