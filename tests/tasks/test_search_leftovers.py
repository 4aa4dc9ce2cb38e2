"""A search run clears the temp files killed runs left, and none a run beside it is writing: two crawls may
run side by side (only their planning takes turns), and a search run that started while another wrote made
that run's rename fail (its shard task with it)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from storage.atomic import temp_path_for
from storage.layout import DataRoot
from tasks.search.plans import PLANS_DIR, STALE_TEMP_S, remove_leftovers
from tasks.search.probe import remove_killed_info_writes


def _temp(root: DataRoot, folder: str, name: str, age_s: float = 0.0) -> Path:
    path = Path(temp_path_for(root.path(folder, name)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"{")
    if age_s:
        written = time.time() - age_s
        os.utime(path, (written, written))
    return path


def test_a_search_run_starting_leaves_live_temp_files_and_clears_dead_ones(tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path / "data")
    live = [
        _temp(root, "info", "abcdefghijk.info.json"),
        _temp(root, f"{PLANS_DIR}/videos", "crawl-0001-00003.json"),
        _temp(root, f"{PLANS_DIR}/search_results", "crawl-0001.json"),
        # Another run's shard being written: its own run clears such files under the shard's lock.
        _temp(root, root.dataset_dir("videos", 1).removeprefix(root.url + "/"), "part-00007.parquet"),
    ]
    dead = [
        _temp(root, "info", "bcdefghijkl.info.json", age_s=STALE_TEMP_S + 60),
        _temp(root, f"{PLANS_DIR}/videos", "crawl-0000-00001.json", age_s=STALE_TEMP_S + 60),
    ]
    assert remove_leftovers(root) == len(dead)
    assert all(p.exists() for p in live)
    assert not any(p.exists() for p in dead)


def test_a_probe_clears_its_own_videos_killed_info_writes_only(tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path / "data")
    mine = _temp(root, "info", "abcdefghijk.info.json")
    other = _temp(root, "info", "zyxwvutsrqp.info.json")  # another shard's video: maybe a live write
    plan = {"videos": [{"video_id": "abcdefghijk"}, {"video_id": "bcdefghijkl"}]}
    assert remove_killed_info_writes(root, plan) == [str(mine)]
    assert not mine.exists() and other.exists()
