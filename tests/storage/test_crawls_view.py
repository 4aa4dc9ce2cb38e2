"""Re-crawl generations: the change rows one generation records, the `crawls` view, the report section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from storage.catalog import query, refresh
from storage.layout import DataRoot
from storage.shards import read_marker, write_shard
from tasks.report.card import markdown
from tasks.report.numbers import crawl_history
from tasks.search.crawl_diff import crawl_changes, gone_before
from tasks.search.crawl_record import record_crawl_changes, record_missing_generations
from tasks.search.plans import RECHECK, caption_recheck_picks, last_checked, save_video_plan
from tests.storage.catalog_data import rows_table

A, B, C, D = "a" * 11, "b" * 11, "c" * 11, "d" * 11


def _write(root: DataRoot, dataset: str, shard: int, rows: list[dict[str, Any]]) -> None:
    table = rows_table(dataset, rows)
    write_shard(root, dataset, shard, table, config_hash="h", code_version="x", rows_in=table.num_rows)


def _hit(video_id: str, views: int, crawl: str) -> dict[str, Any]:
    return {"task_id": "t1", "query": "how to x", "video_id": video_id, "view_count": views,
            "keep": True, "status": "ok", "crawl_id": crawl}  # fmt: skip


def _video(
    video_id: str, crawl: str, keep: bool = True, gone: str | None = None, kind: str | None = "manual"
) -> dict[str, Any]:
    return {"video_id": video_id, "task_id": "t1", "keep": keep, "status": "ok", "crawl_id": crawl,
            "unavailable_since": gone, "caption_kind": kind if keep else None}  # fmt: skip


def _seen(crawl: str, video_id: str, state: str) -> dict[str, str]:
    return {"crawl_id": crawl, "video_id": video_id, "captions": state}


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
         "task_id": "t1", "keep": True, "views_before": None, "views_after": None,
         "captions_before": None, "captions_after": None}
        for v in (A, B)
    ]  # fmt: skip


def test_caption_changes_pure() -> None:
    """A re-check's caption state against the last known one: the `videos` row, then earlier re-checks."""
    videos = [_video(A, "crawl-0000"), _video(B, "crawl-0000", kind="auto"), _video(C, "crawl-0000"),
              {**_video(D, "crawl-0000", keep=False), "drop_reason": "translated_captions_only"}]  # fmt: skip
    seen = [_seen("crawl-0001", A, "none"), _seen("crawl-0001", B, "auto"), _seen("crawl-0002", A, "none"),
            _seen("crawl-0002", B, "manual"), _seen("crawl-0002", C, "translated_only"),
            _seen("crawl-0002", D, "none")]  # fmt: skip
    first = crawl_changes("crawl-0001", "crawl-0000", videos, [], [], seen)
    assert [(r["change"], r["video_id"], r["captions_before"], r["captions_after"]) for r in first] == [
        ("captions", A, "manual", "none")]  # fmt: skip
    # A's loss was reported by crawl-0001 and is not reported again; B gained a manual track.
    second = crawl_changes("crawl-0002", "crawl-0001", videos, [], [], seen)
    assert [(r["video_id"], r["captions_before"], r["captions_after"]) for r in second] == [
        (B, "auto", "manual"), (C, "manual", "translated_only"), (D, "translated_only", "none")]  # fmt: skip
    assert all(r["views_before"] is None and r["keep"] is None for r in second)


def test_caption_recheck_picks_longest_unchecked_first() -> None:
    plans = [{"crawl_id": "crawl-0000", "videos": [{"video_id": v} for v in (A, B, C, D)]},
             {"crawl_id": "crawl-0001", "videos": [{"video_id": A}, {"video_id": C}]}]  # fmt: skip
    checked = last_checked(plans)
    assert checked == {A: "crawl-0001", B: "crawl-0000", C: "crawl-0001", D: "crawl-0000"}
    assert caption_recheck_picks([A, B, C, D], checked, set(), 3) == [B, D, A]
    assert caption_recheck_picks([A, B, C, D], checked, {B}, 2) == [D, A]
    assert caption_recheck_picks([A, B], checked, set(), 0) == []


def test_recorded_generation_shows_in_crawls_view_and_report(tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path / "data")
    _write(root, "search_results", 0, [_hit(A, 100, "crawl-0000"), _hit(B, 5, "crawl-0000")])
    _write(root, "videos", 0, [_video(A, "crawl-0000"), _video(B, "crawl-0000")])
    # The re-crawl: A found again with more views, B gone (re-check row), C and D new (D dropped).
    _write(root, "search_results", 1, [_hit(A, 180, "crawl-0001"), _hit(C, 7, "crawl-0001"),
                                       _hit(D, 1, "crawl-0001")])  # fmt: skip
    _write(root, "videos", 1, [_video(C, "crawl-0001"), _video(D, "crawl-0001", keep=False)])
    # The re-check of A and B (shard 2): B gone (its row above), A still there with auto captions only.
    save_video_plan(root, 2, "crawl-0001", RECHECK, [{"video_id": A}, {"video_id": B}])
    table = rows_table("videos", [_video(B, "crawl-0001", keep=False, gone="crawl-0001")])
    write_shard(root, "videos", 2, table, config_hash="h", code_version="x", rows_in=2,
                extra={"captions_seen": {A: "auto"}})  # fmt: skip

    # A generation with no shard of the current schema version (never recorded, or recorded as v1) is
    # recorded by the next re-crawl; the first generation has nothing to compare with.
    assert record_missing_generations(root, ["crawl-0000", "crawl-0001"]) == ["crawl-0001"]
    assert record_missing_generations(root, ["crawl-0000", "crawl-0001"]) == []
    assert record_crawl_changes(root, "crawl-0001") == {"added": 2, "vanished": 1, "views": 1, "captions": 1}
    marker = read_marker(root, "crawl_changes", 1)  # shard number = crawl number
    assert marker is not None and marker.rows_out == 5
    refresh(root)
    crawls = query("SELECT * FROM crawls", root)
    assert crawls.columns == ["crawl_id", "previous_crawl_id", "search_hits", "videos_found", "added",
                              "added_kept", "vanished", "views_changed", "captions_changed",
                              "returned", "status"]  # fmt: skip
    assert crawls.rows == [
        ("crawl-0000", None, 2, 2, 2, 2, 0, 0, 0, 0, "ok"),
        ("crawl-0001", "crawl-0000", 3, 3, 2, 1, 1, 1, 1, 0, "ok"),
    ]
    captions = query("SELECT video_id, captions_before, captions_after FROM crawl_changes "
                     "WHERE change = 'captions'", root)  # fmt: skip
    assert captions.rows == [(A, "manual", "auto")]
    views = query(
        "SELECT video_id, views_before, views_after FROM crawl_changes WHERE change = 'views'", root
    )
    assert views.rows == [(A, 100, 180)]

    history = crawl_history(root)
    assert [(c["crawl_id"], c["compared_with"], c["views_changed"], c["captions_checked"],
             c["captions_changed"]) for c in history] == [
        ("crawl-0000", None, 0, 0, 0), ("crawl-0001", "crawl-0000", 1, 1, 1)]  # fmt: skip
    # The card's generation lines, with a fake of the rest of the numbers (only `crawls` is read here).
    lines = [line.split(" (started")[0] for line in _card_lines(history) if line.startswith("- crawl-")]
    assert lines == ["- crawl-0000: 2 videos first seen, 0 found gone",
                     "- crawl-0001: 2 videos first seen, 1 found gone, 1 view counts changed since crawl-0000, "
                     "1 of 1 re-checked videos changed captions"]  # fmt: skip


def _card_lines(history: list[dict[str, Any]]) -> list[str]:
    from tasks.report.numbers import ReportNumbers, Stage

    stage = Stage("tasks", "tasks", 1, 1, {})
    zeros = {"clips_per_video": 0.0, "clip_duration_s": 0.0, "words_per_clip": 0.0}
    numbers = ReportNumbers(root="r", funnel=[stage] * 5, clips=0, videos_with_clips=0, hours=0.0,
                            means=zeros, medians=zeros, clips_per_video=[], durations=[], words=[],
                            hours_by_category=[], caption_kinds=[], caption_sources={}, crawls=history)  # fmt: skip
    return markdown(numbers, "now").splitlines()


def test_a_generation_that_found_nothing_new_is_listed_with_its_previous(tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path / "data")
    _write(root, "search_results", 0, [_hit(A, 100, "crawl-0000")])
    _write(root, "videos", 0, [_video(A, "crawl-0000")])
    _write(root, "search_results", 1, [_hit(A, 100, "crawl-0001")])  # the same video, the same views
    assert record_crawl_changes(root, "crawl-0001") == {}  # nothing added, gone or changed: no rows
    marker = read_marker(root, "crawl_changes", 1)
    assert marker is not None and marker.extra["previous_crawl_id"] == "crawl-0000"
    refresh(root)
    rows = query("SELECT crawl_id, previous_crawl_id, added, vanished, views_changed FROM crawls", root).rows
    assert rows == [("crawl-0000", None, 1, 0, 0), ("crawl-0001", "crawl-0000", 0, 0, 0)]
    history = crawl_history(root)
    assert [(c["crawl_id"], c["compared_with"], c["new_videos"], c["gone"]) for c in history] == [
        ("crawl-0000", None, 1, 0), ("crawl-0001", "crawl-0000", 0, 0)]  # fmt: skip
    lines = [line.split(" (started")[0] for line in _card_lines(history) if line.startswith("- crawl-")]
    assert lines == ["- crawl-0000: 1 videos first seen, 0 found gone",
                     "- crawl-0001: 0 videos first seen, 0 found gone, 0 view counts changed since crawl-0000"]  # fmt: skip


def _failed_search(crawl: str, status: str = "error") -> dict[str, Any]:
    """A task's search that got no answer: an error row (an outage) or a refused one (status failed)."""
    return {"task_id": "t1", "query": "how to x", "keep": False, "status": status, "crawl_id": crawl,
            "error": "Connection refused" if status == "error" else "HTTP Error 404"}  # fmt: skip


def test_a_crawl_whose_every_search_failed_is_no_generation(tmp_path: Path) -> None:
    """crawl-0001's every search failed (an outage, then refusals) and was left: crawl-0002 was compared with
    it (0 hits, so A's new view count went unreported) and recorded it as a generation (a `crawl_changes`
    shard, which also says a re-crawl finished). Now crawl-0002 is compared with crawl-0000, crawl-0001 is
    not recorded, and the view and report mark it failed. A search that found nothing is an answer."""
    root = DataRoot.from_any(tmp_path / "data")
    _write(root, "search_results", 0, [_hit(A, 100, "crawl-0000")])
    _write(root, "videos", 0, [_video(A, "crawl-0000")])
    _write(root, "search_results", 1, [_failed_search("crawl-0001"), _failed_search("crawl-0001", "failed")])
    _write(root, "search_results", 2, [_hit(A, 180, "crawl-0002")])
    crawls = ["crawl-0000", "crawl-0001", "crawl-0002"]
    assert record_missing_generations(root, crawls) == ["crawl-0002"]
    assert read_marker(root, "crawl_changes", 1) is None
    marker = read_marker(root, "crawl_changes", 2)
    assert marker is not None and marker.extra["previous_crawl_id"] == "crawl-0000"
    refresh(root)
    views = "SELECT crawl_id, previous_crawl_id, views_before, views_after FROM crawl_changes WHERE change = 'views'"
    assert query(views, root).rows == [("crawl-0002", "crawl-0000", 100, 180)]
    rows = query("SELECT crawl_id, previous_crawl_id, search_hits, status FROM crawls", root).rows
    assert rows == [("crawl-0000", None, 1, "ok"), ("crawl-0001", "crawl-0000", 0, "failed"),
                    ("crawl-0002", "crawl-0000", 1, "ok")]  # fmt: skip
    history = crawl_history(root)
    assert [(c["crawl_id"], c["failed"], c["compared_with"]) for c in history] == [
        ("crawl-0000", False, None), ("crawl-0001", True, "crawl-0000"), ("crawl-0002", False, "crawl-0000")]  # fmt: skip
    lines = [line.split(" (started")[0] for line in _card_lines(history) if line.startswith("- crawl-")]
    assert (
        lines[1] == "- crawl-0001: every search failed; not a generation (no later crawl is compared with it)"
    )
    assert (
        lines[2] == "- crawl-0002: 0 videos first seen, 0 found gone, 1 view counts changed since crawl-0000"
    )

    # A generation recorded against the failed crawl (before it was skipped) is recorded again, once.
    record = {**marker.extra, "previous_crawl_id": "crawl-0001"}
    write_shard(root, "crawl_changes", 2, rows_table("crawl_changes", []), config_hash="h", code_version="x",
                rows_in=1, extra=record)  # fmt: skip
    assert record_missing_generations(root, crawls) == ["crawl-0002"]
    assert record_missing_generations(root, crawls) == []
    # A search that answered with no results (an ok row, no hit) is an answer: that crawl is a generation.
    _write(root, "search_results", 3, [{**_failed_search("crawl-0003", "ok"), "error": None,
                                        "drop_reason": "no_results"}])  # fmt: skip
    assert record_crawl_changes(root, "crawl-0004") == {}
    marker = read_marker(root, "crawl_changes", 4)
    assert marker is not None and marker.extra["previous_crawl_id"] == "crawl-0003"


def _gone(video_id: str, crawl: str) -> dict[str, Any]:
    """A re-check's row for a video it found unavailable."""
    return {**_video(video_id, crawl, keep=False), "status": "failed", "drop_reason": "unavailable",
            "unavailable_since": crawl}  # fmt: skip


def test_a_video_gone_then_back_then_gone_again_pure() -> None:
    """A private video made public again: the re-check that sees it reports it returned, once."""
    videos = [
        _video(A, "crawl-0000"),
        _video(B, "crawl-0000"),
        _gone(A, "crawl-0001"),
        _gone(A, "crawl-0003"),
    ]
    seen = [
        _seen("crawl-0001", B, "manual"),
        _seen("crawl-0002", A, "manual"),
        _seen("crawl-0002", B, "manual"),
    ]
    assert gone_before("crawl-0002", videos, []) == {A: "crawl-0001"}
    back = crawl_changes("crawl-0002", "crawl-0001", videos, [], [], seen)
    assert [(r["change"], r["video_id"]) for r in back] == [("returned", A)]  # B never left
    # Gone is what the recorded changes say: a re-check that saw A after crawl-0002 recorded its change
    # (a retried probe) is no return; the next generation's re-check then records it.
    assert gone_before("crawl-0001", videos, back) == {}
    assert gone_before("crawl-0003", videos, back) == {}
    assert gone_before("crawl-0005", videos, back) == {A: "crawl-0003"}
    assert gone_before("crawl-0003", videos, []) == {A: "crawl-0001"}
    again = crawl_changes("crawl-0003", "crawl-0002", videos, [], [], seen, back)
    assert [(r["change"], r["video_id"]) for r in again] == [("vanished", A)]
    assert crawl_changes("crawl-0002", "crawl-0001", videos, [], [], seen, back)[0]["change"] == "returned"


def test_video_catalog_keeps_a_video_that_came_back(tmp_path: Path) -> None:
    """Before, a video a re-check found gone stayed `unavailable` in video_catalog (and the report's funnel)
    for good, even after a later crawl saw it again."""
    root = DataRoot.from_any(tmp_path / "data")
    _write(root, "videos", 0, [_video(A, "crawl-0000"), _video(B, "crawl-0000")])
    _write(root, "videos", 1, [_gone(A, "crawl-0001"), _gone(B, "crawl-0001")])
    seen = [_seen("crawl-0002", A, "manual")]
    videos = [
        _video(A, "crawl-0000"),
        _video(B, "crawl-0000"),
        _gone(A, "crawl-0001"),
        _gone(B, "crawl-0001"),
    ]
    _write(root, "crawl_changes", 2, crawl_changes("crawl-0002", "crawl-0001", videos, [], [], seen))
    refresh(root)
    catalog = "SELECT video_id, keep, drop_reason, unavailable_since FROM video_catalog ORDER BY 1"
    assert query(catalog, root).rows == [(A, True, None, None), (B, False, "unavailable", "crawl-0001")]
    _write(root, "videos", 3, [_gone(A, "crawl-0003")])  # and gone again
    refresh(root)
    assert query(catalog, root).rows == [
        (A, False, "unavailable", "crawl-0003"), (B, False, "unavailable", "crawl-0001")]  # fmt: skip


def test_a_recheck_that_failed_is_no_new_video_in_the_report(tmp_path: Path) -> None:
    """A re-check probe that errored (a 503) leaves an `error` row to retry under the re-crawl's id: the
    report listed it as a video first seen in that generation, where the `crawls` view said 0 added."""
    root = DataRoot.from_any(tmp_path / "data")
    _write(root, "search_results", 0, [_hit(A, 100, "crawl-0000"), _hit(B, 100, "crawl-0000")])
    _write(root, "videos", 0, [_video(A, "crawl-0000"), _video(B, "crawl-0000")])
    _write(
        root,
        "search_results",
        1,
        [_hit(A, 100, "crawl-0001"), _hit(B, 100, "crawl-0001"), _hit(C, 9, "crawl-0001")],
    )
    _write(root, "videos", 1, [_video(C, "crawl-0001")])
    _write(
        root,
        "videos",
        2,
        [{**_video(A, "crawl-0001", keep=False), "status": "error"}, _gone(B, "crawl-0001")],
    )
    record_crawl_changes(root, "crawl-0001")
    refresh(root)
    assert query("SELECT crawl_id, added, vanished FROM crawls", root).rows == [
        ("crawl-0000", 2, 0), ("crawl-0001", 1, 1)]  # fmt: skip
    history = crawl_history(root)
    assert [(c["crawl_id"], c["new_videos"], c["gone"]) for c in history] == [
        ("crawl-0000", 2, 0), ("crawl-0001", 1, 1)]  # fmt: skip


def test_a_gone_video_found_again_is_planned_for_a_recheck(tmp_path: Path) -> None:
    """The re-crawl's plan: a gone video its search lists again is re-checked (with `gone_since`, so a
    probe that finds it still gone writes no second row), until a generation records it back. A re-check
    retried after its generation was recorded (captions_seen, but no `returned` row) leaves it gone, as
    video_catalog says, so the next generation checks it again and records it."""
    from tasks.search.plans import plan_rechecks, video_plans

    root = DataRoot.from_any(tmp_path / "data")
    _write(root, "videos", 0, [_video(A, "crawl-0000"), _video(B, "crawl-0000"), _video(C, "crawl-0000")])
    _write(root, "videos", 1, [_gone(A, "crawl-0001"), _gone(C, "crawl-0001")])
    save_video_plan(root, 2, "crawl-0002", RECHECK, [{"video_id": A}])
    write_shard(root, "videos", 2, rows_table("videos", []), config_hash="h", code_version="x", rows_in=1,
                extra={"captions_seen": {A: "manual"}})  # fmt: skip
    _write(root, "search_results", 3, [_hit(v, 100, "crawl-0003") for v in (A, B, C)])
    plans = plan_rechecks(root, "crawl-0003", [3], 250, missing=True, captions=0)
    assert [(v["video_id"], v.get("gone_since")) for p in plans for v in p["videos"]] == [
        (A, "crawl-0001"), (C, "crawl-0001")]  # fmt: skip
    # Once a generation recorded C back, C is a known video like any other: not re-checked for being found.
    _write(root, "crawl_changes", 4, crawl_changes("crawl-0004", "crawl-0003", [_gone(C, "crawl-0001")], [], [],
                                                   [_seen("crawl-0004", C, "manual")]))  # fmt: skip
    _write(root, "search_results", 5, [_hit(v, 100, "crawl-0005") for v in (A, B, C)])
    plans = plan_rechecks(root, "crawl-0005", [5], 250, missing=True, captions=0)
    assert [(v["video_id"], v.get("gone_since")) for p in plans for v in p["videos"]] == [(A, "crawl-0001")]
    assert {p["crawl_id"] for p in video_plans(root).values()} == {"crawl-0002", "crawl-0003", "crawl-0005"}
