"""A crawl and a HowTo100M import fixing their `videos` shard numbers at the same moment never share one.

Each side writes what it claims and then looks for the other (tasks/search/plans.py append_video_plans), so
whichever order the steps interleave in, one side sees the other. Both interleavings are forced here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tasks.howto100m.layout as layout
import tasks.search.plans as plans
from storage.layout import DataRoot
from tasks.search.plans import ImportInProgress, append_video_plans, next_video_shard, video_plans

VIDEOS = [{"video_id": f"crawled{i:04d}"} for i in range(3)]


def _crawl(root: DataRoot, next_shard: int) -> list[dict[str, Any]]:
    return append_video_plans(root, VIDEOS, "crawl-1", "search", 2, next_shard)


def test_a_crawl_that_numbered_before_an_import_started_gives_its_numbers_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = DataRoot.from_any(tmp_path / "root")
    numbered = next_video_shard(root)  # the crawl numbers its shards: 0 and 1
    save = plans.save_video_plan
    import_plans: list[dict[str, Any]] = []

    def import_starts_first(*args: Any, **kwargs: Any) -> dict[str, Any]:
        if not import_plans:  # the import fixes its base after the crawl's check, before its first plan
            import_plans.append(layout.load_plan(root, "batch-1"))
        return save(*args, **kwargs)

    monkeypatch.setattr(plans, "save_video_plan", import_starts_first)
    with pytest.raises(ImportInProgress, match="has not finished"):
        _crawl(root, numbered)
    assert import_plans[0]["videos_base"] == 0
    assert video_plans(root) == {}  # the crawl's plans are gone: shards 0 and 1 are the import's alone


def test_an_import_that_numbered_before_a_crawl_wrote_its_plans_moves_past_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = DataRoot.from_any(tmp_path / "root")
    crawled: list[list[dict[str, Any]]] = []

    def crawl_between(of: DataRoot) -> int:
        base = next_video_shard(of)
        if not crawled:  # the whole crawl runs after the import took its base, before its plan is written
            crawled.append(_crawl(of, next_video_shard(of)))
        return base

    monkeypatch.setattr(layout, "next_video_shard", crawl_between)
    plan = layout.load_plan(root, "batch-1")
    assert [p["shard"] for p in crawled[0]] == [0, 1]
    assert plan["videos_base"] == 2
    monkeypatch.undo()
    assert layout.load_plan(root, "batch-1")["videos_base"] == 2  # as saved: a rerun keeps the moved base
