"""Hostile metadata from a probed site: every oddity ends as a `videos` row, never as a failed shard."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from info_files import load_info as load_fixture
from youtube_fakes import client, clients

from storage.layout import DataRoot
from storage.schemas import get_schema
from tasks.search.config import SearchVideosConfig
from tasks.search.info_store import load_info
from tasks.search.probe import ProbeRun
from tasks.youtube.client import YoutubeClient
from tasks.youtube.decision import INVALID_METADATA, decide
from tasks.youtube.sanitize import MAX_DEPTH, info_problem
from tasks.youtube.video_download import selected_size

CFG = SearchVideosConfig()
BAD, GOOD = "aaaaaaaaaaa", "bbbbbbbbbbb"
ASR = [{"ext": "vtt", "url": "https://x/api/timedtext?lang=en&kind=asr"}]


def info(vid: str, **fields: Any) -> dict[str, Any]:
    base = {"id": vid, "title": "t", "duration": 60, "view_count": 500, "subtitles": {}}
    return {**base, "automatic_captions": {"en-orig": ASR}, **fields}


def nested(depth: int) -> dict[str, Any]:
    """{"a": {"a": ... {}}} built without recursion."""
    top: dict[str, Any] = {}
    node = top
    for _ in range(depth):
        node["a"] = {}
        node = node["a"]
    return top


def nested_list(depth: int) -> list[Any]:
    top: list[Any] = []
    node = top
    for _ in range(depth):
        node.append([])
        node = node[0]
    return top


def watch(vid: str) -> str:
    return f"https://www.youtube.com/watch?v={vid}"


def plan(*ids: str) -> dict[str, Any]:
    videos = [
        {"video_id": v, "task_id": "t", "rank": i + 1, "url": None, "title": "planned"}
        for i, v in enumerate(ids)
    ]
    return {"shard": 0, "crawl_id": "crawl-0000", "videos": videos}


def probe_run(root: DataRoot, c: YoutubeClient, previous: pa.Table | None) -> list[dict[str, Any]]:
    """The rows of one run over the plan [BAD, GOOD], every thread using the scripted client `c`."""
    return ProbeRun(root, CFG, plan(BAD, GOOD), clients(c)).run(previous)


def probe_rows(
    root: DataRoot, answers: dict[str, list[Any]], previous: pa.Table | None = None
) -> list[dict[str, Any]]:
    c, _ = client(answers)
    rows = probe_run(root, c, previous)
    # The shard's table builds: what probe_shard writes, so the shard completes.
    assert pa.Table.from_pylist(rows, schema=get_schema("videos").schema).num_rows == 2
    return rows


# Each: what a hostile site put into the info dict, and what the row's error then says.
HOSTILE: dict[str, tuple[dict[str, Any], str]] = {
    "infinite view_count": ({"view_count": math.inf}, "view_count is not a finite number (inf)"),
    "NaN duration": ({"duration": math.nan}, "duration is not a finite number (nan)"),
    "-inf deep in a format": ({"formats": [{"tbr": -math.inf}]}, "formats[0].tbr is not a finite number"),
    "negative duration": ({"duration": -5}, "duration is -5, not a number from 0 to 1e15"),
    "float view_count past int64": ({"view_count": 1e300}, "view_count is 1e+300, not a number from 0"),
    "integer past 64 bits": ({"view_count": 10**400}, "view_count is an integer of 1329 bits"),
    "50 MB description": ({"description": "x" * (50 << 20)}, "description is 52,428,800 characters"),
    "lone surrogate in the title": ({"title": "Grill \ud800"}, "title is not valid Unicode text"),
    "nesting past the limit": ({"extra": nested(MAX_DEPTH + 5)}, f"nested deeper than {MAX_DEPTH} levels"),
    "10k-deep nesting": ({"extra": nested(10_000)}, "nested too deeply"),
    "lists nested 10k deep": ({"formats": nested_list(10_000)}, "nested too deeply"),
    "many big fields": ({"chapters": ["y" * 900_000] * 20}, "larger than 16,000,000 characters"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_probe_is_a_failed_row_and_nothing_is_kept(tmp_path: Path, name: str) -> None:
    fields, message = HOSTILE[name]
    root = DataRoot.from_any(tmp_path)
    rows = probe_rows(root, {watch(BAD): [info(BAD, **fields)], watch(GOOD): [info(GOOD)]})
    bad, good = rows
    assert (bad["status"], bad["keep"], bad["drop_reason"]) == ("failed", False, INVALID_METADATA)
    assert bad["error"].startswith("unusable metadata: ") and message in bad["error"]
    assert len(bad["error"]) < 400 and bad["info_path"] is None
    assert not (tmp_path / "info" / f"{BAD}.info.json").exists()  # never saved, so never reused
    assert (good["status"], good["keep"]) == ("ok", True) and (tmp_path / good["info_path"]).exists()


def test_failed_hostile_row_is_not_probed_again(tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path)
    answers = {watch(BAD): [info(BAD, view_count=math.inf)], watch(GOOD): [info(GOOD)]}
    c, ydl = client(answers)
    first = probe_run(root, c, None)
    previous = pa.Table.from_pylist(first, schema=get_schema("videos").schema)
    again = probe_run(root, c, previous)
    assert again == first and len(ydl.calls) == 2  # the same bytes would come back: no second request


@pytest.mark.parametrize(
    "fields",
    [
        {"title": ["not", "a", "string"]},
        {"title": 42, "channel": {"name": "x"}, "upload_date": 20240101},
        {"view_count": "many", "subtitles": "none", "automatic_captions": {"en-orig": ASR, "": None}},
        {"live_status": "x" * 100_000},
        {"description": "x" * 200_000, "formats": [{"tbr": 1.5, "url": "https://x/" + "q" * 5000}]},
        # urlsplit raises on these ("Invalid IPv6 URL"): a track no one can fetch, not a failed shard.
        {"subtitles": {"en": [{"ext": "vtt", "url": "https://[www.youtube.com/api/timedtext?lang=en"}]}},
        {
            "automatic_captions": {
                "en-orig": [{"ext": "vtt", "url": "http://[::1/x?kind=asr&lang=en"}],
                **{"en": ASR},
            }
        },
        # Only a string can name an extractor; a list or an object is no reason to fail the shard.
        {"extractor_key": ["YoutubeTab"]},
        {"extractor_key": {"name": "Youtube"}},
    ],
)
def test_odd_but_harmless_metadata_is_probed_as_usual(tmp_path: Path, fields: dict[str, Any]) -> None:
    root = DataRoot.from_any(tmp_path)
    bad, _ = probe_rows(root, {watch(BAD): [info(BAD, **fields)], watch(GOOD): [info(GOOD)]})
    assert bad["status"] == "ok" and bad["error"] is None and bad["info_path"] == f"info/{BAD}.info.json"
    assert bad["title"] in ("planned", "t") and len(bad["live_status"] or "") <= 100


def test_kept_info_file_with_infinity_is_a_failed_row_not_a_failed_shard(tmp_path: Path) -> None:
    # Written by an earlier run before this check existed: json.dumps writes `Infinity`, loads reads it.
    (tmp_path / "info").mkdir()
    kept = json.dumps(info(BAD, view_count=math.inf, duration=math.nan))
    (tmp_path / "info" / f"{BAD}.info.json").write_text(kept)
    rows = probe_rows(DataRoot.from_any(tmp_path), {watch(GOOD): [info(GOOD)]})
    assert rows[0]["status"] == "failed" and "view_count is not a finite number" in rows[0]["error"]


def test_kept_info_file_nested_too_deep_to_parse_is_probed_again(tmp_path: Path) -> None:
    (tmp_path / "info").mkdir()
    (tmp_path / "info" / f"{BAD}.info.json").write_text(
        '{"id": "x", "a": ' + "[" * 10_000 + "]" * 10_000 + "}"
    )
    root = DataRoot.from_any(tmp_path)
    assert load_info(root, BAD) is None  # unreadable, like a missing file
    rows = probe_rows(root, {watch(BAD): [info(BAD)], watch(GOOD): [info(GOOD)]})
    assert [r["status"] for r in rows] == ["ok", "ok"] and rows[0]["keep"]


def test_info_problem_walks_any_depth_without_recursion() -> None:
    assert info_problem(info(GOOD)) is None
    deep = info(GOOD, extra=nested(100_000))
    assert info_problem(deep) == f"nested deeper than {MAX_DEPTH} levels at extra" + ".a" * (MAX_DEPTH - 1)
    assert info_problem({"k" * 10_000: math.nan}) == "k" * 40 + "... is not a finite number (nan)"
    assert info_problem({1: "x"}) == "a key of type int at the top level"
    long_keys: dict[str, Any] = {}
    node = long_keys
    for _ in range(MAX_DEPTH + 1):
        node = node.setdefault("k" * 1000, {})
    problem = info_problem(long_keys) or ""
    assert problem.startswith("nested deeper than") and len(problem) == 300 and problem.endswith("...")
    assert info_problem({"x": b"bytes"}) == "x is a bytes, not a JSON value"


@pytest.mark.parametrize(
    "fields",
    [
        {"view_count": math.inf},
        {"view_count": math.nan},
        {"view_count": 10**400},
        {"view_count": 2.0**63},
        {"duration": -math.inf},
        {"duration": -1},
    ],
)
def test_decide_never_raises_and_names_impossible_numbers(fields: dict[str, Any]) -> None:
    d = decide(info(GOOD, **fields))
    assert (d.keep, d.drop_reason, d.duration_s, d.view_count) == (
        False,
        INVALID_METADATA,
        None if "duration" in fields else 60.0,
        None if "view_count" in fields else 500,
    )


@pytest.mark.parametrize("junk", [math.inf, -math.inf, math.nan, -1, 0, True, "241688662"])
def test_selected_size_treats_a_size_that_is_no_size_as_unknown(junk: object) -> None:
    """On real info files: a bad `filesize` falls back to `filesize_approx`, a bad one of that is unknown."""
    merged = load_fixture("yt-dlp-2025-11_dQw4w9WgXcQ")  # "401+251", sized by filesize_approx
    assert selected_size(merged) == 241688662
    merged["filesize"] = junk
    assert selected_size(merged) == 241688662
    merged["filesize_approx"] = junk
    assert selected_size(merged) is None
    old = load_fixture("youtube-dl-2018_by0e4didQpM")  # format 18 has a filesize, 22 none
    both = [dict(old["formats"][0]), dict(old["formats"][0])]
    assert selected_size({"requested_formats": both}) == 2 * 10364468
    both[1]["filesize"] = junk
    assert selected_size({"requested_formats": both}) is None
