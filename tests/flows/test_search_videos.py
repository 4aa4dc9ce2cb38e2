"""Stage 2 end to end against the demo site: search, de-duplicate, probe, decide; troubles; resume."""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from flows.search_videos import import_videos, search_videos
from storage.catalog import query
from storage.layout import DataRoot
from storage.schemas import get_schema
from storage.shards import list_markers, read_dataset, write_shard
from tasks.demo.site import DemoSite
from tasks.demo.troubles import Troubles
from tasks.search.config import SearchVideosConfig
from tasks.search.inputs import chunk, kept_tasks
from tasks.search.planning_claim import CrawlPlanning, planning_claim
from tasks.search.plans import crawl_search_base, plan_new_videos, plan_rechecks, video_plans
from tasks.search.probe import probe_shard
from tasks.search.search import EverySearchFailed, search_shard
from tasks.youtube.access import YoutubeAccess
from tasks.youtube.errors import StageHalted
from tasks.youtube.politeness import PolitenessSettings, shared_politeness
from tests.loopback import serving

pytestmark = pytest.mark.slow


def make_root(tmp_path: Path, site: DemoSite) -> DataRoot:
    """A data root whose `tasks` dataset holds the demo world's articles (what stage 1 would write)."""
    root = DataRoot.from_any(tmp_path / "data")
    rows = []
    for article in site.world.articles:
        row = dict.fromkeys(get_schema("tasks").schema.names)
        slug = re.sub(r"[^a-z0-9]+", "-", article.title.lower()).strip("-")
        row.update(
            task_id=slug, title=article.title, keep=bool(article.videos), status="ok", crawl_id="crawl-0000"
        )
        rows.append(row)
    table = pa.Table.from_pylist(rows, schema=get_schema("tasks").schema)
    write_shard(root, "tasks", 0, table, config_hash="test", code_version="test", rows_in=len(rows))
    return root


def config(**overrides: Any) -> SearchVideosConfig:
    return SearchVideosConfig(
        **{"search_prefix": "demosearch", "tasks_per_shard": 3, "videos_per_shard": 15, **overrides}
    )


def access(site: DemoSite, rate: float = 0, **overrides: Any) -> YoutubeAccess:
    """The demo site, no waits but short back-offs on 429s."""
    polite = PolitenessSettings(
        requests_per_s=rate, jitter_s=0, backoff_base_s=0.05, backoff_max_s=0.4, max_backoffs=8
    )
    return YoutubeAccess(**{"site_url": site.url, "politeness": polite, "socket_timeout_s": 5, **overrides})


def rows(root: DataRoot, dataset: str) -> list[dict[str, Any]]:
    return sorted(
        read_dataset(root, dataset).to_table().to_pylist(),
        key=lambda r: (r.get("video_id") or "", r.get("task_id") or "", r.get("rank") or 0),
    )


def hits(site: DemoSite, path: str) -> int:
    return sum(1 for line in site.requests if line.split(" ", 1)[1].startswith(path))


@pytest.fixture(scope="module")
def reference(demo_site: DemoSite, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One clean run with every metadata trouble of the demo world switched on."""
    ids = [v.id for v in demo_site.world.videos if v.status == "ok" and v.captions != "none"]
    troubles = Troubles(
        low_views={ids[0]}, long_videos={ids[1]}, private={ids[2]}, removed={ids[3]}, few_words={ids[4]}
    )
    demo_site.set_troubles(troubles)
    try:
        root = make_root(tmp_path_factory.mktemp("ref"), demo_site)
        summary = search_videos(config(), root.url, access(demo_site))
        before = len(demo_site.requests)
        again = search_videos(config(), root.url, access(demo_site))
        after = len(demo_site.requests)
    finally:
        demo_site.set_troubles()
    return {
        "root": root,
        "ids": ids,
        "world_videos": list(demo_site.world.videos),
        "troubles": troubles,
        "summary": summary,
        "again": again,
        "requests_on_rerun": after - before,
        "videos": rows(root, "videos"),
    }


def test_clean_run_decides_every_video_once(reference: dict[str, Any]) -> None:
    root, ids = reference["root"], reference["ids"]
    videos, results = reference["videos"], rows(root, "search_results")
    by_id = {v["video_id"]: v for v in videos}
    assert len(by_id) == len(videos)  # de-duplicated: every video once
    # Each video belongs to the task where it ranked best (ties: smaller task id).
    for vid, row in by_id.items():
        ranked = sorted((r["rank"], r["task_id"]) for r in results if r["video_id"] == vid and r["keep"])
        assert (row["rank"], row["task_id"]) == ranked[0]
    # Metadata troubles are caught by the prefilter, before any probe.
    drops = {r["video_id"]: r["drop_reason"] for r in results if r["video_id"] in ids[:2]}
    assert drops == {ids[0]: "too_few_views", ids[1]: "too_long"}
    assert ids[0] not in by_id and ids[1] not in by_id
    # Private and removed videos are permanent, recorded, not errors.
    for vid in ids[2:4]:
        assert (by_id[vid]["status"], by_id[vid]["keep"], by_id[vid]["drop_reason"]) == (
            "failed",
            False,
            "unavailable",
        )
    kept = [v for v in videos if v["keep"]]
    # Too few words is the captions stage's rule: the probe cannot see words, so the video goes on.
    assert by_id[ids[4]]["keep"]
    assert kept and all(v["caption_lang"] and v["caption_kind"] in ("manual", "auto") for v in kept)
    assert all(v["status"] != "error" and v["crawl_id"] == "crawl-0000" for v in videos)
    no_caps = {v.id for v in reference["world_videos"] if v.captions == "none"} & set(by_id)
    assert no_caps and {v["video_id"] for v in videos if v["drop_reason"] == "no_english_captions"} >= no_caps
    # The probe's info is kept for the captions stage, without secrets.
    for v in kept:
        text = (Path(root.url) / v["info_path"]).read_text()
        assert json.loads(text)["id"] == v["video_id"] and "cookies" not in text


def test_second_run_does_no_work(reference: dict[str, Any]) -> None:
    again = reference["again"]
    assert reference["requests_on_rerun"] == 0
    assert again["shards"] == again["shards_cached"] and again["new_videos"] == 0


def test_429s_slow_the_stage_and_nothing_is_lost(
    site: DemoSite, tmp_path: Path, reference: dict[str, Any]
) -> None:
    site.set_troubles(Troubles(too_many_requests=5, **_meta(reference)))
    breaker = shared_politeness(access(site).politeness).breaker
    trips, paused = breaker.trips, breaker.paused_s
    root = make_root(tmp_path, site)
    summary = search_videos(config(), root.url, access(site))
    assert summary["errors"] == 0 and summary["search_errors"] == 0
    assert breaker.trips - trips >= 5 and breaker.paused_s > paused  # it backed off, and waited
    assert rows(root, "videos") == reference["videos"]


def test_bot_check_stops_with_advice_then_resumes_failed_videos_only(
    site: DemoSite, tmp_path: Path, reference: dict[str, Any]
) -> None:
    site.set_troubles(Troubles(bot_check=1, **_meta(reference)))
    root = make_root(tmp_path, site)
    with pytest.raises(StageHalted) as info:
        search_videos(config(), root.url, access(site, concurrency=1))
    assert "--cookies" in str(info.value) and "--proxy" in str(info.value)
    # Progress was saved: the halted shard's untried videos are error rows, searches are all done.
    errors = [r for r in rows(root, "videos") if r["status"] == "error"]
    assert errors and all("not probed" in r["error"] or "bot" in r["error"] for r in errors)
    site.set_troubles(Troubles(**_meta(reference)))
    search_before, watch_before = hits(site, "/youtubei/v1/search"), hits(site, "/watch")
    search_videos(config(), root.url, access(site))
    assert hits(site, "/youtubei/v1/search") == search_before  # finished search shards are not redone
    assert hits(site, "/watch") - watch_before == len(errors)  # only the failed videos are probed again
    assert rows(root, "videos") == reference["videos"]


def test_timeouts_are_error_rows_retried_next_run(
    site: DemoSite, tmp_path: Path, reference: dict[str, Any]
) -> None:
    site.set_troubles(Troubles(slow_s=2.0, slow_prefix="/youtubei/v1/search", **_meta(reference)))
    root = make_root(tmp_path, site)
    # Every search timed out: the stage fails (an outage must not complete a crawl), its error rows kept.
    with pytest.raises(EverySearchFailed, match="timed out"):
        search_videos(config(), root.url, access(site, socket_timeout_s=0.3, retries=0, extractor_retries=0))
    n_tasks = len(kept_tasks(root))
    searched = rows(root, "search_results")
    assert len(searched) == n_tasks and all(r["status"] == "error" for r in searched)
    assert not video_plans(root)
    site.set_troubles(Troubles(**_meta(reference)))
    search_videos(config(), root.url, access(site))
    assert rows(root, "videos") == reference["videos"]


def test_killed_mid_probe_resumes_without_searching_again(
    site: DemoSite, tmp_path: Path, reference: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """State on disk after a SIGKILL inside the first probe shard: searches, plans, some info files."""
    site.set_troubles(Troubles(**_meta(reference)))
    cfg = config()
    root = make_root(tmp_path, site)
    tasks = kept_tasks(root)
    base = crawl_search_base(root, cfg.crawl_id, [])
    for i, part in enumerate(chunk(tasks, cfg.tasks_per_shard)):
        search_shard.fn(root.url, base + i, part, cfg, access(site))
    plan_new_videos(
        root, cfg.crawl_id, range(base, base + len(chunk(tasks, cfg.tasks_per_shard))), cfg.videos_per_shard
    )
    first = min(video_plans(root))

    import tasks.search.probe as probe_stage

    saved: list[str] = []
    real_save = probe_stage.save_info

    def dying_save(root_: DataRoot, vid: str, info: dict[str, Any]) -> str:
        if len(saved) == 4:
            raise KeyboardInterrupt  # the process dies here
        saved.append(vid)
        return real_save(root_, vid, info)

    monkeypatch.setattr(probe_stage, "save_info", dying_save)
    with pytest.raises(KeyboardInterrupt):
        probe_shard.fn(root.url, first, cfg, access(site, concurrency=1))
    monkeypatch.setattr(probe_stage, "save_info", real_save)
    assert not list_markers(root, "videos")
    search_before, watch_before = hits(site, "/youtubei/v1/search"), hits(site, "/watch")
    search_videos(cfg, root.url, access(site))
    assert hits(site, "/youtubei/v1/search") == search_before
    n_planned = sum(len(p["videos"]) for p in video_plans(root).values())
    assert hits(site, "/watch") - watch_before == n_planned - len(saved)  # probed info is reused
    assert rows(root, "videos") == reference["videos"]


def test_import_probes_listed_videos_without_search(
    site: DemoSite, tmp_path: Path, reference: dict[str, Any]
) -> None:
    site.set_troubles(Troubles(**_meta(reference)))
    root = DataRoot.from_any(tmp_path / "data")
    known = reference["videos"][:3]
    listing = tmp_path / "HowTo100M_v1.csv"
    listing.write_text(
        "video_id,category_1,category_2,rank,task_id\n"
        + "".join(f"{v['video_id']},Food,Recipes,{i + 1},t{i}\n" for i, v in enumerate(known))
        + "../../etc/passwd,Food,Recipes,9,t9\n"
    )
    search_before = hits(site, "/youtubei/v1/search")
    summary = import_videos(str(listing), config(), root.url, access(site))
    assert hits(site, "/youtubei/v1/search") == search_before
    assert summary["bad_lines"] == 1 and summary["new_videos"] == 3
    got = {r["video_id"]: r for r in rows(root, "videos")}
    assert set(got) == {v["video_id"] for v in known}
    for i, v in enumerate(known):
        assert (got[v["video_id"]]["keep"], got[v["video_id"]]["task_id"]) == (v["keep"], f"t{i}")
    # Importing the same file again finds nothing new.
    assert import_videos(str(listing), config(), root.url, access(site))["new_videos"] == 0


def test_an_import_while_another_crawl_plans_is_refused_before_any_probe(
    site: DemoSite, tmp_path: Path, reference: dict[str, Any]
) -> None:
    root = DataRoot.from_any(tmp_path / "data")
    listing = tmp_path / "ids.txt"
    listing.write_text("".join(f"{v['video_id']}\n" for v in reference["videos"][:2]))
    watch_before = hits(site, "/watch")
    with planning_claim(root, "crawl-weekly"):  # a scheduled re-crawl numbering its new shards right now
        with pytest.raises(CrawlPlanning, match="run one crawl at a time"):
            import_videos(str(listing), config(crawl_id="crawl-import"), root.url, access(site))
    assert video_plans(root) == {} and hits(site, "/watch") == watch_before
    assert (
        import_videos(str(listing), config(crawl_id="crawl-import"), root.url, access(site))["new_videos"]
        == 2
    )


def _meta(reference: dict[str, Any]) -> dict[str, Any]:
    t = reference["troubles"]
    return {
        "low_views": t.low_views,
        "long_videos": t.long_videos,
        "private": t.private,
        "removed": t.removed,
    }


def test_recrawl_appends_new_shards_with_only_new_videos(site: DemoSite, tmp_path: Path) -> None:
    world = site.world
    root = make_root(tmp_path, site)
    search_videos(config(), root.url, access(site))
    old_files = {p: p.read_bytes() for p in Path(root.url).rglob("part-*.parquet") if "/tasks/" not in str(p)}
    old_ids = {r["video_id"] for r in rows(root, "videos")}
    old_shards = {m.shard for m in list_markers(root, "videos")}
    old_search = {m.shard for m in list_markers(root, "search_results")}
    grown_world = world.grow()
    try:
        site.set_world(grown_world)
        summary = search_videos(config(crawl_id="crawl-0001"), root.url, access(site))
    finally:
        site.set_world(world)
    assert all(p.read_bytes() == data for p, data in old_files.items())  # no old shard file touched
    new_search = {m.shard for m in list_markers(root, "search_results")} - old_search
    assert new_search and min(new_search) > max(old_search)
    new_rows = [r for r in rows(root, "videos") if r["crawl_id"] == "crawl-0001"]
    grown = {v.id for v in grown_world.videos} - {v.id for v in world.videos}
    assert {r["video_id"] for r in new_rows} == grown and not grown & old_ids
    assert summary["new_videos"] == len(grown)
    assert min({m.shard for m in list_markers(root, "videos")} - old_shards) > max(old_shards)


KILLABLE = """
import sys
from flows.search_videos import search_videos
from tasks.youtube.access import YoutubeAccess
from tasks.search.config import SearchVideosConfig
search_videos(
    SearchVideosConfig.model_validate_json(sys.argv[1]), sys.argv[2], YoutubeAccess.model_validate_json(sys.argv[3])
)
"""


def kept_infos(info_dir: Path) -> list[Path]:
    """Finished info files; a kill can leave an atomic write's hidden temp file, which is no probe."""
    return [p for p in info_dir.glob("*.info.json") if not p.name.startswith(".")]


def test_sigkill_during_probing_then_resume(
    site: DemoSite, tmp_path: Path, reference: dict[str, Any]
) -> None:
    """A real `kill -9` of a flow process while it probes; the rerun redoes neither searches nor probes."""
    from prefect.settings import PREFECT_API_URL

    site.set_troubles(Troubles(**_meta(reference)))
    root = make_root(tmp_path, site)
    # Polite enough (10 requests/s, one thread) that the kill lands in the middle of probing.
    cfg, slow = config(), access(site, rate=10, concurrency=1)
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    info_dir = tmp_path / "data" / "info"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLABLE, cfg.model_dump_json(), root.url, slow.model_dump_json()],
        env=env,
        cwd=Path(__file__).parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if info_dir.exists() and len(kept_infos(info_dir)) >= 6:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the flow finished (or died) before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    probed = {p.name.split(".")[0] for p in kept_infos(info_dir)}
    n_planned = sum(len(p["videos"]) for p in video_plans(root).values())
    assert 6 <= len(probed) < n_planned  # killed in the middle of probing
    search_before, watch_before = hits(site, "/youtubei/v1/search"), hits(site, "/watch")
    search_videos(config(), root.url, access(site))
    assert hits(site, "/youtubei/v1/search") == search_before
    assert hits(site, "/watch") - watch_before == n_planned - len(probed)
    assert rows(root, "videos") == reference["videos"]
    assert not [p for p in (tmp_path / "data").rglob(".tmp-*")]


def test_recrawl_marks_videos_that_disappeared(site: DemoSite, tmp_path: Path) -> None:
    world = site.world
    root = make_root(tmp_path, site)
    search_videos(config(), root.url, access(site))
    kept = [r["video_id"] for r in rows(root, "videos") if r["keep"]]
    gone = kept[len(kept) // 2]
    old_files = {p: p.read_bytes() for p in Path(root.url).rglob("part-*.parquet")}
    shrunk = copy.copy(world)
    shrunk.videos = [v for v in world.videos if v.id != gone]  # taken down: no search hit, no watch page
    cfg = config(crawl_id="crawl-0001", recheck_missing=True)
    try:
        site.set_world(shrunk)
        search_videos(cfg, root.url, access(site))
        before = len(site.requests)
        again = search_videos(cfg, root.url, access(site))
        assert len(site.requests) == before and again["new_videos"] == 0  # a finished re-crawl is cached
    finally:
        site.set_world(world)
    assert all(p.read_bytes() == data for p, data in old_files.items())
    new_rows = [r for r in rows(root, "videos") if r["crawl_id"] == "crawl-0001"]
    assert [
        (r["video_id"], r["unavailable_since"], r["keep"], r["status"], r["drop_reason"]) for r in new_rows
    ] == [(gone, "crawl-0001", False, "failed", "unavailable")]


def test_a_recrawl_does_not_recheck_the_videos_of_tasks_whose_search_failed(
    site: DemoSite, tmp_path: Path
) -> None:
    """A task whose search failed (a timeout: an error row, searched again on the next run) did not find its
    videos missing: every kept video of it was probed again as 'not found again', a request each at the
    polite rate (a search outage re-probed the whole collection)."""
    root = make_root(tmp_path, site)
    search_videos(config(), root.url, access(site))
    cfg = config(crawl_id="crawl-0001", recheck_missing=True, recheck_captions=0)
    site.set_troubles(Troubles(slow_s=2.0, slow_prefix="/youtubei/v1/search"))
    try:
        watch_before = hits(site, "/watch")
        with pytest.raises(
            EverySearchFailed, match=f"{len(kept_tasks(root))} of {len(kept_tasks(root))} tasks"
        ):
            search_videos(cfg, root.url, access(site, socket_timeout_s=0.3, retries=0, extractor_retries=0))
    finally:
        site.set_troubles()
    assert hits(site, "/watch") == watch_before  # no video of theirs probed
    # Every search failed: no hit, where the failed searches' rows used to be counted as hits.
    crawls = query("SELECT crawl_id, search_hits, videos_found FROM crawls ORDER BY 1", root).rows
    assert crawls[-1] == ("crawl-0001", 0, 0) and crawls[0][1] > 0
    # The stage now stops before planning; a crawl with only some searches failed goes on to plan its
    # re-checks, which must not count the failed tasks' videos as missing.
    base = crawl_search_base(root, "crawl-0001", [])  # saved when crawl-0001 started
    shards = range(base, base + len(chunk(kept_tasks(root), cfg.tasks_per_shard)))
    assert plan_rechecks(root, "crawl-0001", shards, cfg.videos_per_shard, True, 0) == []


def test_a_refused_search_in_a_crawl_that_got_answers_is_reported(site: DemoSite, tmp_path: Path) -> None:
    """One task's query refused for good (a 404) while the others answer: the stage goes on, keeps the
    refusal, and its summary counts it (search_refused). Before, it was neither a hit nor an error, and the
    summary said nothing of it."""
    root = make_root(tmp_path, site)
    refused_title = kept_tasks(root)[0]["title"]

    class OneQueryRefused(BaseHTTPRequestHandler):
        """The demo site, but its search answers 404 for the first kept task's query."""

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            query = json.loads(body).get("query", "") if self.path.startswith("/youtubei/v1/search") else ""
            if query.lower() == f"how to {refused_title}".lower():
                self.send_error(404)
                return
            request = urllib.request.Request(site.url + self.path, data=body or None, method=self.command)
            for name in ("Content-Type", "Range"):
                if self.headers.get(name):
                    request.add_header(name, self.headers[name])
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    status, headers, data = answer.status, answer.headers, answer.read()
            except urllib.error.HTTPError as exc:
                status, headers, data = exc.code, exc.headers, exc.read()
            self.send_response(status)
            for name in ("Content-Type", "Content-Range", "Accept-Ranges"):
                if headers.get(name):
                    self.send_header(name, headers[name])
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _forward

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    with serving(OneQueryRefused) as url:
        polite = PolitenessSettings(requests_per_s=0, jitter_s=0, backoff_base_s=0.05, backoff_max_s=0.4)
        summary = search_videos(
            config(), root.url, YoutubeAccess(site_url=url, politeness=polite, socket_timeout_s=5, retries=0)
        )
    assert summary["search_refused"] == 1 and summary["search_errors"] == 0 and summary["search_hits"] > 0
    [refused] = [r for r in rows(root, "search_results") if r["status"] == "failed"]
    assert refused["task_id"] == kept_tasks(root)[0]["task_id"] and refused["rank"] is None
