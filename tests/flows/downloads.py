"""A data root with a downloads folder, as an earlier run leaves it: stages resume from its files offline."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from storage.layout import DataRoot


def root_with_downloads(tmp_path: Path) -> tuple[DataRoot, Path]:
    """A fresh data root under `tmp_path` and its (empty) downloaded-videos folder; skips without ffmpeg."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed (setup installs it)")
    root = DataRoot.from_any(tmp_path / "data")
    videos = Path(root.path("_work", "videos"))
    videos.mkdir(parents=True)
    return root, videos
