"""Re-crawl generations: the change rows one generation records, the `crawls` view, the report section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from storage.catalog import query, refresh
from storage.layout import DataRoot
from storage.shards import read_marker, write_shard
from tasks.report.card import markdown
from tasks.report.numbers import crawl_history
from tasks.youtube.crawl_diff import crawl_changes
from tasks.youtube.crawl_record import record_crawl_changes
from tests.storage.catalog_data import rows_table

A, B, C, D = "a" * 11, "b" * 11, "c" * 11, "d" * 11


def _write(root: DataRoot, dataset: str, shard: int, rows: list[dict[str, Any]]) -> None:
    table = rows_table(dataset, rows)
    write_shard(root, dataset, shard, table, config_hash="h", code_version="x", rows_in=table.num_rows)


def _hit(video_id: str, views: int, crawl: str) -> dict[str, Any]:
    return {"task_id": "t1", "query": "how to x", "video_id": video_id, "view_count": views,
            "keep": True, "status": "ok", "crawl_id": crawl}  # fmt: skip


def _video(video_id: str, crawl: str, keep: bool = True, gone: str | None = None) -> dict[str, Any]:
    return {"video_id": video_id, "task_id": "t1", "keep": keep, "status": "ok", "crawl_id": crawl,
            "unavailable_since": gone}  # fmt: skip


def test_changes_of_one_generation_pure() -> None:
    videos = [_video(A, "crawl-0000"), _video(B, "crawl-0000"), _video(C, "crawl-0001", keep=False),
              {**_video(B, "crawl-0001", keep=False), "unavailable_since": "crawl-0001"}]  # fmt: skip
    before = [_hit(A, 100, "crawl-0000"), _hit(A, 90, "crawl-0000"), _hit(B, 5, "crawl-0000")]
    after = [_hit(A, 150, "crawl-0001"), _hit(C, 7, "crawl-0001")]
    rows = crawl_changes("crawl-0001", "crawl-0000", videos, before, after)
    assert [(r["change"], r["video_id"]) for r in rows] == [("added", C), ("vanished", B), ("views", A)]
    assert rows[0]["keep"] is False and rows[1]["keep"] is None
    assert (rows[2]["views_before"], rows[2]["views_after"]) == (100, 150)  # the highest hit per generation
    assert crawl_changes("crawl-0000", None, videos[:2], [], before) == [
        {"crawl_id": "crawl-0000", "previous_crawl_id": None, "video_id": v, "change": "added",
         "task_id": "t1", "keep": True, "views_before": None, "views_after": None}
        for v in (A, B)
    ]  # fmt: skip


def test_recorded_generation_shows_in_crawls_view_and_report(tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path / "data")
    _write(root, "search_results", 0, [_hit(A, 100, "crawl-0000"), _hit(B, 5, "crawl-0000")])
    _write(root, "videos", 0, [_video(A, "crawl-0000"), _video(B, "crawl-0000")])
    # The re-crawl: A found again with more views, B gone (re-check row), C and D new (D dropped).
    _write(root, "search_results", 1, [_hit(A, 180, "crawl-0001"), _hit(C, 7, "crawl-0001"),
                                       _hit(D, 1, "crawl-0001")])  # fmt: skip
    _write(root, "videos", 1, [_video(C, "crawl-0001"), _video(D, "crawl-0001", keep=False)])
    _write(root, "videos", 2, [_video(B, "crawl-0001", keep=False, gone="crawl-0001")])

    assert record_crawl_changes(root, "crawl-0001") == {"added": 2, "vanished": 1, "views": 1}
    marker = read_marker(root, "crawl_changes", 1)  # shard number = crawl number
    assert marker is not None and marker.rows_out == 4
    refresh(root)
    crawls = query("SELECT * FROM crawls", root)
    assert crawls.columns == ["crawl_id", "previous_crawl_id", "search_hits", "videos_found", "added",
                              "added_kept", "vanished", "views_changed"]  # fmt: skip
    assert crawls.rows == [
        ("crawl-0000", None, 2, 2, 2, 2, 0, 0),
        ("crawl-0001", "crawl-0000", 3, 3, 2, 1, 1, 1),
    ]
    views = query(
        "SELECT video_id, views_before, views_after FROM crawl_changes WHERE change = 'views'", root
    )
    assert views.rows == [(A, 100, 180)]

    history = crawl_history(root)
    assert [(c["crawl_id"], c["compared_with"], c["views_changed"]) for c in history] == [
        ("crawl-0000", None, 0), ("crawl-0001", "crawl-0000", 1)]  # fmt: skip
    # The card's generation lines, with a fake of the rest of the numbers (only `crawls` is read here).
    lines = [line.split(" (started")[0] for line in _card_lines(history) if line.startswith("- crawl-")]
    assert lines == ["- crawl-0000: 2 videos first seen, 0 found gone",
                     "- crawl-0001: 2 videos first seen, 1 found gone, 1 view counts changed since crawl-0000"]  # fmt: skip


def _card_lines(history: list[dict[str, Any]]) -> list[str]:
    from tasks.report.numbers import ReportNumbers, Stage

    stage = Stage("tasks", "tasks", 1, 1, {})
    zeros = {"clips_per_video": 0.0, "clip_duration_s": 0.0, "words_per_clip": 0.0}
    numbers = ReportNumbers(root="r", funnel=[stage] * 5, clips=0, videos_with_clips=0, hours=0.0,
                            means=zeros, medians=zeros, clips_per_video=[], durations=[], words=[],
                            hours_by_category=[], caption_kinds=[], caption_sources={}, crawls=history)  # fmt: skip
    return markdown(numbers, "now").splitlines()
