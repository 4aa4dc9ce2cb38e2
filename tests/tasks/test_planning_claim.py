"""One crawl at a time picks and numbers new videos shards: a claim of its own name, then a look for others."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from storage.layout import DataRoot
from tasks.search.planning_claim import CLAIMS, STALE_S, CrawlPlanning, planning_claim
from tasks.search.plans import PLANS_DIR


def _claim_files(root: DataRoot) -> list[str]:
    folder = Path(root.path(PLANS_DIR, CLAIMS))
    return sorted(p.name for p in folder.glob("*.json")) if folder.exists() else []


def test_a_second_crawl_is_refused_while_one_plans_and_leaves_no_claim(tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path / "root")
    with planning_claim(root, "crawl-weekly"):
        with pytest.raises(CrawlPlanning, match=r"another crawl .*\(crawl-weekly on .*pid \d+\), since"):
            with planning_claim(root, "crawl-manual"):
                pytest.fail("the second crawl went on planning")
        # The refused crawl's claim is gone; the planning one's stays until it has finished.
        assert [name.split(".")[0] for name in _claim_files(root)] == ["crawl-weekly"]
    assert _claim_files(root) == []
    with planning_claim(root, "crawl-manual"):  # its turn now
        assert len(_claim_files(root)) == 1


def test_a_claim_left_by_a_killed_crawl_is_removed_once_stale(tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path / "root")
    killed = planning_claim(root, "crawl-killed", now=time.time() - STALE_S - 60)
    killed.__enter__()  # never left: the process died while planning
    with pytest.raises(CrawlPlanning):  # not yet stale for a crawl that started just after it
        with planning_claim(root, "crawl-soon", now=time.time() - STALE_S + 60):
            pass
    with planning_claim(root, "crawl-later"):
        assert [name.split(".")[0] for name in _claim_files(root)] == ["crawl-later"]
    assert _claim_files(root) == []


def test_the_claim_goes_when_planning_fails(tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path / "root")
    with pytest.raises(ZeroDivisionError):
        with planning_claim(root, "crawl-1"):
            assert len(_claim_files(root)) == 1
            _ = 1 / 0
    assert _claim_files(root) == []
