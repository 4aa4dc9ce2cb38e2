"""Stage pieces without Prefect or network: hit rows, de-duplication, plans, probe reuse and halts."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from youtube_fakes import ACCESS, client, clients

from storage.layout import DataRoot
from storage.schemas import get_schema
from tasks.search.assign import best_hits, new_candidates
from tasks.search.config import SearchVideosConfig
from tasks.search.plans import RECHECK, append_video_plans, crawl_search_base, next_video_shard, video_plans
from tasks.search.probe import ProbeRun
from tasks.search.search import count_refused, every_search_failed, hit_rows, search_tasks

CFG = SearchVideosConfig()
TASK = {"task_id": "grill-zucchini", "title": "Grill Zucchini"}
IDS = ["aaaaaaaaaaa", "bbbbbbbbbbb", "ccccccccccc", "ddddddddddd"]


def watch(vid: str) -> str:
    return f"https://www.youtube.com/watch?v={vid}"


def test_hit_rows_rank_prefilter_and_refuse_bad_ids() -> None:
    entries = [
        {"id": IDS[0], "title": "ok", "duration": 300, "view_count": 5000, "url": "https://evil.example/x"},
        {"id": "../../etc/passwd", "title": "x" * 5000},
        {"id": IDS[1], "duration": 2417.0, "view_count": 10},
        {"id": IDS[2], "view_count": 37},
        {"id": IDS[3]},
    ]
    rows = hit_rows(TASK, "how to Grill Zucchini", entries, CFG, watch)
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["keep"] and rows[0]["url"] == watch(IDS[0])  # our canonical URL, never the web's
    assert (rows[1]["video_id"], rows[1]["status"], rows[1]["drop_reason"]) == (None, "failed", "invalid_id")
    assert len(rows[1]["title"]) == 1000 and len(rows[1]["error"]) < 200
    assert [r["drop_reason"] for r in rows[2:]] == ["too_long", "too_few_views", None]
    table = pa.Table.from_pylist(rows, schema=get_schema("search_results").schema)
    assert table.num_rows == 5
    assert hit_rows(TASK, "q", [], CFG, watch)[0]["drop_reason"] == "no_results"


def test_hit_rows_read_numbers_and_titles_as_the_probe_does() -> None:
    """A flat entry's numbers go through the probe's own rule (`measure`): a count past int64, a bool, NaN
    or a negative duration is unknown (never a failed shard or a NaN cell), and the digits of an old
    youtube-dl string are a number; a title that is not UTF-8 text (a lone surrogate) is no title."""
    entries: list[dict[str, Any]] = [
        {"id": IDS[0], "view_count": 10**30, "duration": math.nan},
        {"id": IDS[1], "view_count": True, "duration": -3.0, "title": "Grill \ud800"},
        {"id": IDS[2], "view_count": "37", "duration": "2417"},
        {"id": IDS[3], "view_count": 5000.0, "duration": True},
    ]
    rows = hit_rows(TASK, "q", entries, CFG, watch)
    assert pa.Table.from_pylist(rows, schema=get_schema("search_results").schema).num_rows == 4
    assert [(r["duration_s"], r["view_count"]) for r in rows] == [
        (None, None),
        (None, None),
        (2417.0, 37),
        (None, 5000),
    ]
    assert [r["drop_reason"] for r in rows] == [None, None, "too_long", None]
    assert rows[1]["title"] is None


def test_search_reuses_clean_tasks_and_retries_errors() -> None:
    other = {"task_id": "paint-a-wall", "title": "How to paint a wall"}
    answers = {
        "ytsearch200:how to Grill Zucchini": ["HTTP Error 503: Service Unavailable", {"entries": []}],
        "ytsearch200:How to paint a wall": [{"entries": [{"id": IDS[0]}]}],
    }
    c, ydl = client(answers)
    first, halted = search_tasks([TASK, other], CFG, c)
    assert halted is None and [r["status"] for r in first] == ["error", "ok"]
    previous = pa.Table.from_pylist(first, schema=get_schema("search_results").schema)
    second, _ = search_tasks([TASK, other], CFG, c, previous)
    assert ydl.calls[-1] == "ytsearch200:how to Grill Zucchini" and len(ydl.calls) == 3  # only the failed one
    assert [r["drop_reason"] for r in second] == ["no_results", None]


def test_a_crawl_fails_only_when_every_search_failed() -> None:
    """Shard manifests as search_shard returns them: rows_in tasks, errors the tasks whose search errored,
    refused those whose search was refused for good (status failed)."""

    def shard(tasks: int, errors: int, refused: int = 0) -> dict[str, int]:
        return {"rows_in": tasks, "rows_out": tasks + 40, "errors": errors, "refused": refused}

    assert every_search_failed([shard(3, 3), shard(2, 2)]) == (5, 0, 5)  # an outage
    assert every_search_failed([shard(3, 3), shard(2, 1)]) is None  # some answered: the crawl goes on
    assert every_search_failed([shard(3, 3), shard(2, 0)]) is None  # a finished (cached) shard answered
    assert every_search_failed([]) is None  # no kept task: nothing failed
    # Every query refused (a 404 for each), or some refused and the rest errors: no answer either.
    assert every_search_failed([shard(3, 0, 3), shard(2, 0, 2)]) == (0, 5, 5)
    assert every_search_failed([shard(3, 1, 2), shard(2, 2)]) == (3, 2, 5)
    assert every_search_failed([shard(3, 0, 2), shard(2, 0, 2)]) is None  # one answered


def test_refused_searches_are_counted_apart_from_hits() -> None:
    c, _ = client(lambda url: "HTTP Error 404: Not Found")
    rows, _ = search_tasks([TASK], CFG, c)
    assert [(r["status"], r["rank"]) for r in rows] == [("failed", None)]
    bad = hit_rows(TASK, "q", [{"id": "../../etc/passwd"}], CFG, watch)  # a failed row, but a hit
    table = pa.Table.from_pylist(rows + bad, schema=get_schema("search_results").schema)
    assert count_refused(table) == 1


def test_search_halt_marks_the_rest_as_errors() -> None:
    c, ydl = client(lambda url: "Sign in to confirm you're not a bot")
    rows, halted = search_tasks([TASK, {"task_id": "t2", "title": "x"}], CFG, c)
    assert halted is not None and len(ydl.calls) == 1
    assert [r["status"] for r in rows] == ["error", "error"]


def hit(task: str, rank: int, vid: str, keep: bool = True, status: str = "ok") -> dict[str, Any]:
    return {
        "task_id": task,
        "rank": rank,
        "video_id": vid,
        "url": None,
        "title": None,
        "keep": keep,
        "status": status,
    }


def test_dedup_keeps_best_rank_and_breaks_ties_by_task() -> None:
    best = best_hits(
        [
            hit("b", 3, IDS[0]),
            hit("a", 7, IDS[0]),
            hit("c", 2, IDS[1]),
            hit("a", 2, IDS[1]),
            hit("a", 1, IDS[2], keep=False),
            hit("a", 1, None),
            hit("a", 1, "../../x"),
        ]
    )
    assert {v: (h["task_id"], h["rank"]) for v, h in best.items()} == {IDS[0]: ("b", 3), IDS[1]: ("a", 2)}
    assert [h["video_id"] for h in new_candidates(best, seen={IDS[1]})] == [IDS[0]]


def test_plans_append_after_existing_shards(tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path)
    cands = [
        {"video_id": f"{i:011d}", "task_id": "t", "rank": i, "url": None, "title": None} for i in range(7)
    ]
    first = append_video_plans(root, cands[:5], "crawl-0000", "search", 2, next_video_shard(root))
    assert [p["shard"] for p in first] == [0, 1, 2] and [len(p["videos"]) for p in first] == [2, 2, 1]
    second = append_video_plans(root, cands[5:], "crawl-0001", "search", 2, next_video_shard(root))
    assert [p["shard"] for p in second] == [3] and sorted(video_plans(root)) == [0, 1, 2, 3]
    assert crawl_search_base(root, "crawl-0000", [0, 1]) == 2  # after the shards already on disk
    assert crawl_search_base(root, "crawl-0000", [0, 1, 2, 3]) == 2  # fixed once the crawl started


INFO = {
    "id": IDS[0],
    "title": "t",
    "duration": 60,
    "view_count": 500,
    "subtitles": {},
    "automatic_captions": {"en-orig": [{"ext": "vtt", "url": "https://x/api/timedtext?lang=en&kind=asr"}]},
}


def plan(*ids: str) -> dict[str, Any]:
    return {
        "shard": 0,
        "crawl_id": "crawl-0000",
        "videos": [
            {"video_id": v, "task_id": "t", "rank": i + 1, "url": None, "title": None}
            for i, v in enumerate(ids)
        ],
    }


def test_probe_run_rows_reuse_and_permanent_failures(tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path)
    answers = {
        watch(IDS[0]): [dict(INFO)],
        watch(IDS[1]): ["Private video. Sign in if you've been granted access"],
        watch(IDS[2]): ["The read operation timed out", {**INFO, "id": IDS[2], "view_count": 3}],
    }
    c, ydl = client(answers)
    run = ProbeRun(root, CFG, plan(*IDS[:3]), clients(c))
    rows = run.run(None)
    assert [(r["status"], r["keep"], r["drop_reason"]) for r in rows] == [
        ("ok", True, None),
        ("failed", False, "unavailable"),
        ("error", False, None),
    ]
    assert rows[0]["caption_lang"] == "en-orig" and (tmp_path / rows[0]["info_path"]).exists()
    previous = pa.Table.from_pylist(rows, schema=get_schema("videos").schema)
    again = ProbeRun(root, CFG, plan(*IDS[:3]), clients(c)).run(previous)
    assert ydl.calls.count(watch(IDS[2])) == 2 and len(ydl.calls) == 4  # only the transient error is retried
    assert again[2]["drop_reason"] == "too_few_views" and again[:2] == rows[:2]


def test_a_rechecks_rerun_probes_only_its_errors(tmp_path: Path) -> None:
    """A re-check shard rerun for one timed-out video (as the next crawl's run does): the videos it saw fine
    have no row (a re-check writes rows only for what changed), so they were all probed again; now what
    the earlier run saw comes with the rerun, and only the error is probed."""
    root = DataRoot.from_any(tmp_path)
    answers = {
        watch(IDS[0]): [dict(INFO)],
        watch(IDS[2]): ["The read operation timed out", {**INFO, "id": IDS[2]}],
    }
    c, ydl = client(answers, ACCESS.model_copy(update={"info_reuse_max_age_s": 0}))  # a week later
    recheck = {**plan(IDS[0], IDS[2]), "source": RECHECK}
    first = ProbeRun(root, CFG, recheck, clients(c))
    rows = first.run(None)
    assert [(r["video_id"], r["status"]) for r in rows] == [(IDS[2], "error")]
    assert list(first.captions_seen) == [IDS[0]]
    previous = pa.Table.from_pylist(rows, schema=get_schema("videos").schema)
    again = ProbeRun(root, CFG, recheck, clients(c), first.captions_seen)
    assert again.run(previous) == []  # both there: nothing changed
    assert ydl.calls.count(watch(IDS[0])) == 1 and ydl.calls.count(watch(IDS[2])) == 2
    assert again.captions_seen == {IDS[0]: first.captions_seen[IDS[0]], IDS[2]: first.captions_seen[IDS[0]]}


def test_probe_run_halt_leaves_untried_videos_as_errors(tmp_path: Path) -> None:
    c, ydl = client(
        lambda url: "Sign in to confirm you\u2019re not a bot", ACCESS.model_copy(update={"concurrency": 1})
    )
    run = ProbeRun(DataRoot.from_any(tmp_path), CFG, plan(*IDS), clients(c))
    rows = run.run(None)
    assert run.halted is not None and len(ydl.calls) == 1
    assert all(r["status"] == "error" and "not probed" in r["error"] for r in rows)


@pytest.mark.parametrize("title", ["Grill Zucchini", "how to  grill zucchini"])
def test_query(title: str) -> None:
    assert CFG.query(title).lower() == "how to grill zucchini"
