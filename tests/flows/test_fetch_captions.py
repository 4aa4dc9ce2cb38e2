"""fetch_captions end to end against the local demo site, through the real yt-dlp client and downloader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from flows.fetch_captions import fetch_captions
from storage.layout import DataRoot
from storage.schemas import get_schema
from storage.shards import read_marker, read_shard, write_shard
from tasks.captions.config import FetchCaptionsConfig
from tasks.demo.site import DemoSite
from tasks.demo.troubles import Troubles
from tasks.demo.world import World
from tasks.search.info_store import save_info
from tasks.search.probe import video_row
from tasks.youtube.access import YoutubeAccess
from tasks.youtube.client import YoutubeClient
from tasks.youtube.decision import decide
from tasks.youtube.politeness import PolitenessSettings

NO_WAIT = PolitenessSettings(requests_per_s=0, jitter_s=0, backoff_base_s=0.01, backoff_max_s=0.05)


@pytest.fixture()
def site(demo_site: DemoSite) -> DemoSite:
    """The shared session demo site (tests/conftest.py); tests that switch troubles switch them back."""
    return demo_site


def access_for(site: DemoSite) -> YoutubeAccess:
    return YoutubeAccess(site_url=site.url, politeness=NO_WAIT, retries=0, extractor_retries=0)


def run(site: DemoSite, root: DataRoot) -> dict[str, Any]:
    return fetch_captions(FetchCaptionsConfig(), data_root=root.url, access=access_for(site))


def seed_root(root: DataRoot, site: DemoSite, ids: list[str]) -> None:
    """A `tasks` shard and a `videos` shard 0 made by probing the demo site, as stage 2 would."""
    world = site.world
    client = YoutubeClient(access_for(site))
    rows = []
    for vid in ids:
        video = world.video(vid)
        assert video is not None
        url = client.video_url(vid)
        info = client.probe(url)
        rows.append(
            video_row(
                {"video_id": vid, "task_id": video.task, "rank": 1},
                "crawl-0001",
                url,
                decide(info),
                info_path=save_info(root, vid, info),
            )
        )
    write_shard(
        root,
        "videos",
        0,
        pa.Table.from_pylist(rows, schema=get_schema("videos").schema),
        config_hash="videos-hash",
        code_version="test",
        rows_in=len(rows),
    )
    tasks = [
        {
            "task_id": a.title,
            "title": a.title,
            "category_path": list(reversed(a.category_path)),
            "keep": True,
            "status": "ok",
            "crawl_id": "crawl-0001",
        }
        for a in world.articles
    ]
    table = pa.Table.from_pylist(
        [{n: t.get(n) for n in get_schema("tasks").schema.names} for t in tasks],
        schema=get_schema("tasks").schema,
    )
    write_shard(root, "tasks", 0, table, config_hash="tasks-hash", code_version="test", rows_in=len(tasks))


def pick(world: World) -> list[str]:
    """Two of each caption offer, plus the video whose narration is too short."""
    fine = [
        v
        for v in world.videos
        if v.status == "ok" and v.language == "en" and v.view_count >= 100 and v.reported_duration_s <= 2000
    ]
    chosen: list[str] = []
    for kind in ("auto", "auto_music", "manual", "manual+auto"):
        chosen += [v.id for v in fine if v.captions == kind and len(v.words) >= 100][:2]
    chosen += [v.id for v in fine if v.captions != "none" and len(v.words) < 100][:1]
    return chosen


def timedtext_requests(site: DemoSite) -> int:
    return sum(1 for r in site.requests if "timedtext" in r)


def test_fetch_captions_end_to_end(site: DemoSite, tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path / "data")
    ids = pick(site.world)
    seed_root(root, site, ids)
    before = timedtext_requests(site)
    summary = run(site, root)
    assert summary["shards"] == 1 and summary["errors"] == 0
    assert timedtext_requests(site) - before == len(ids)

    captions = read_shard(root, "captions", 0).to_pylist()
    assert sorted(r["video_id"] for r in captions) == sorted(ids)
    by_id = {r["video_id"]: r for r in captions}
    for vid in ids:
        video = site.world.video(vid)
        row = by_id[vid]
        assert row["status"] == "ok" and (tmp_path / "data" / row["vtt_path"]).exists()
        assert row["crawl_id"] == "crawl-0001"
        assert abs(row["n_words"] - len(video.words)) <= 0.01 * len(video.words)
        if len(video.words) < 100:
            assert (row["keep"], row["drop_reason"], row["n_clips"]) == (False, "too_few_words", 0)
        else:
            assert row["keep"] and row["drop_reason"] is None and row["n_clips"] > 0
        if video.captions == "auto_music":
            assert row["caption_kind"] == "auto" and row["dropped_tags"] >= 1

    clips = read_shard(root, "clips", 0).to_pylist()
    kept = {r["video_id"] for r in captions if r["keep"]}
    assert {c["video_id"] for c in clips} == kept
    assert sum(by_id[v]["n_clips"] for v in kept) == len(clips)
    for vid in kept:
        mine = [c for c in clips if c["video_id"] == vid]
        assert [c["clip_id"] for c in mine] == [f"{vid}_{i:04d}" for i in range(len(mine))]
        assert " ".join(c["text"] for c in mine).split() == site.world.video(vid).words
        for a, b in zip(mine, mine[1:], strict=False):
            assert a["end_ms"] <= b["start_ms"] and a["text"] != b["text"]
        video = site.world.video(vid)
        level1 = site.world.article(video.task).category_path[0]
        assert all(c["category"] == level1 and c["crawl_id"] == "crawl-0001" for c in mine)
        assert all(c["end_ms"] - c["start_ms"] > 20 for c in mine)
    # The captions marker is written after clips: both markers carry the same shard hash.
    assert read_marker(root, "captions", 0).config_hash == read_marker(root, "clips", 0).config_hash

    # A second run does no work at all: the shard is cached and the site sees no caption request.
    before = len(site.requests)
    again = run(site, root)
    assert again["shards_cached"] == 1 and len(site.requests) == before


def test_failed_downloads_are_retried_and_kept_files_reused(site: DemoSite, tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path / "data")
    ids = pick(site.world)[:4]
    seed_root(root, site, ids)
    broken = ids[1]
    site.set_troubles(Troubles(truncated_captions=frozenset({broken})))
    try:
        first = run(site, root)
    finally:
        site.set_troubles()
    assert first["errors"] == 1
    row = {r["video_id"]: r for r in read_shard(root, "captions", 0).to_pylist()}[broken]
    assert row["status"] == "error" and row["keep"] is False and row["vtt_path"] is None
    assert not (tmp_path / "data" / "vtt" / f"{broken}.{row['caption_lang']}.vtt").exists()

    before = timedtext_requests(site)
    second = run(site, root)
    assert second["errors"] == 0 and second["shards_cached"] == 0
    assert timedtext_requests(site) - before == 1  # only the failed video; the others' .vtt were reused
    rows = read_shard(root, "captions", 0).to_pylist()
    assert all(r["status"] == "ok" for r in rows)
    assert run(site, root)["shards_cached"] == 1


def test_a_new_cleaner_version_redoes_finished_shards_from_the_kept_files(
    site: DemoSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change to how tracks are read bumps CLEANER_VERSION: a finished shard is then redone, from its
    kept .vtt files (not one caption request), so old shards never keep an old reading."""
    import tasks.captions.stage as captions_stage

    root = DataRoot.from_any(tmp_path / "data")
    seed_root(root, site, pick(site.world)[:3])
    run(site, root)
    old_hash = read_marker(root, "captions", 0).config_hash
    rows = read_shard(root, "captions", 0).to_pylist()

    monkeypatch.setattr(captions_stage, "CLEANER_VERSION", captions_stage.CLEANER_VERSION + 1)
    before = timedtext_requests(site)
    again = run(site, root)
    assert again["shards_cached"] == 0 and timedtext_requests(site) == before
    assert read_marker(root, "captions", 0).config_hash != old_hash
    assert read_shard(root, "captions", 0).to_pylist() == rows  # the same reading code: the same rows
    assert run(site, root)["shards_cached"] == 1


def test_a_rerun_removes_the_temp_files_of_its_killed_vtt_writes_only(site: DemoSite, tmp_path: Path) -> None:
    # A run killed while it wrote a .vtt left `vtt/.tmp-<uuid>-<id>.<lang>.vtt` behind, and no run removed it.
    from storage.atomic import temp_path_for
    from tasks.captions.stage import vtt_relpath

    root = DataRoot.from_any(tmp_path / "data")
    ids = pick(site.world)[:2]
    seed_root(root, site, ids)
    root.makedirs(root.path("vtt"))
    killed = [
        temp_path_for(root.path(vtt_relpath(vid, lang))) for vid, lang in ((ids[0], "en"), (ids[1], "fr"))
    ]
    # Another shard's video: its run may be writing this file now, so it is not this shard's to remove.
    other = pick(site.world)[2]
    live = temp_path_for(root.path(vtt_relpath(other, "en")))
    for path in [*killed, live]:
        Path(path).write_bytes(b"WEBVTT\n\n00:00.000 --> 00:01")
    assert run(site, root)["errors"] == 0
    assert not any(Path(p).exists() for p in killed)
    assert Path(live).exists()
    assert all(
        (tmp_path / "data" / r["vtt_path"]).exists() for r in read_shard(root, "captions", 0).to_pylist()
    )
