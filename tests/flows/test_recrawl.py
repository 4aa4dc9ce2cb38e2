"""Re-crawl after the demo world grows: exactly the new videos are added, no old shard file is touched,
a video that vanished is marked `unavailable_since`, a known video whose captions were taken down is
recorded as a caption change, and `howto recrawl` gives the new videos audio features as the pipeline does."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from flows.demo import demo_pipeline_config
from flows.pipeline import pipeline
from flows.recrawl import next_crawl_id, recrawl
from storage.catalog import query
from storage.layout import DataRoot
from tasks.report.numbers import funnel
from tests.loopback import serving


def snapshot(root: Path) -> dict[str, str]:
    """Every Parquet shard file and its content hash."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("part-*.parquet"))
    }


@pytest.mark.slow
def test_recrawl_adds_exactly_new_videos(demo_site, tmp_path: Path) -> None:
    """A re-crawl with its default stages, after a first crawl that stopped at captions: every kept video,
    the new ones too, ends with audio features, as `howto pipeline` gives them."""
    root = tmp_path / "data"
    demo = demo_pipeline_config(demo_site.url)
    # One small 2D model: which videos get rows is what counts here, not the frame features themselves.
    small = demo.features.model_copy(update={"models": ("resnet152",), "short_side_2d": 32})
    cfg = demo.model_copy(update={"features": small})
    pipeline(cfg=cfg, data_root=str(root), stages=["tasks", "search", "captions"])
    assert next_crawl_id(DataRoot.from_any(root)) == "crawl-0001"
    before = snapshot(root)
    old_ids = {r[0] for r in query("SELECT video_id FROM videos", str(root)).rows}
    kept_before = sorted(r[0] for r in query("SELECT video_id FROM video_catalog WHERE keep", str(root)).rows)
    vanished, uncaptioned = kept_before[0], kept_before[1]
    kind_before = query(f"SELECT caption_kind FROM videos WHERE video_id = '{uncaptioned}'", str(root)).rows

    original = demo_site.world
    grown = original.grow()
    kept_titles = {r[0] for r in query("SELECT title FROM tasks WHERE keep", str(root)).rows}
    expected_new = {v.id for v in grown.videos if v.task in kept_titles} - {v.id for v in original.videos}
    assert expected_new, "the grown world must add videos to kept tasks"
    taken_down = copy.copy(grown)  # the vanished video: no search hit, no watch page any more
    taken_down.videos = [v for v in grown.videos if v.id != vanished]
    # Still found by search, but its captions are gone: only a re-check of known videos can see that.
    taken_down.videos = [
        dataclasses.replace(v, captions="none") if v.id == uncaptioned else v for v in taken_down.videos
    ]
    demo_site.set_world(taken_down)
    try:
        summary = recrawl(cfg=cfg, data_root=str(root))
    finally:
        demo_site.set_world(original)

    assert summary["crawl_id"] == "crawl-0001"
    after = snapshot(root)
    assert {k: after[k] for k in before} == before, "an old shard file was rewritten"
    new_rows = query(
        "SELECT video_id FROM videos WHERE crawl_id = 'crawl-0001' AND unavailable_since IS NULL", str(root)
    ).rows
    assert {r[0] for r in new_rows} == expected_new
    assert not ({r[0] for r in new_rows} & old_ids)
    assert query("SELECT count(*) - count(DISTINCT video_id) FROM video_catalog", str(root)).rows == [(0,)]
    # The default stages ran features and audio after the search: every kept video has audio rows.
    kept_after = {r[0] for r in query("SELECT video_id FROM video_catalog WHERE keep", str(root)).rows}
    assert kept_after - set(kept_before), "the grown world must add kept videos"
    statuses = dict(query("SELECT DISTINCT video_id, status FROM audio_features", str(root)).rows)
    assert kept_after <= set(statuses), (
        f"kept videos without audio rows: {sorted(kept_after - set(statuses))}"
    )
    assert all(statuses[v] != "error" for v in kept_after), statuses
    gone = query(
        "SELECT video_id, unavailable_since, keep, drop_reason FROM video_catalog "
        "WHERE unavailable_since IS NOT NULL",
        str(root),
    ).rows
    assert gone == [(vanished, "crawl-0001", False, "unavailable")]
    # The report's funnel drops the vanished video's caption track and clips with it, though they stay
    # in the dataset: no stage keeps more than the videos before it left.
    stages = {stage.name: stage for stage in funnel(DataRoot.from_any(root))}
    vanished_clips = query(f"SELECT count(*) FROM clips WHERE video_id = '{vanished}'", str(root)).rows[0][0]
    assert vanished_clips >= 1
    assert stages["clips"].drops == {"video unavailable (re-crawl)": vanished_clips}
    assert stages["clips"].kept == stages["clips"].total - vanished_clips
    assert stages["caption tracks"].drops["video unavailable (re-crawl)"] == 1
    assert stages["videos"].drops["unavailable (re-crawl)"] == 1
    assert stages["caption tracks"].kept <= stages["videos"].kept
    new_clips = query(
        "SELECT count(DISTINCT video_id) FROM clips WHERE crawl_id = 'crawl-0001'", str(root)
    ).rows
    assert new_clips[0][0] >= 1
    # The generation records what it changed: the new videos, the vanished one, queryable per crawl.
    assert summary["changes"]["added"] == len(expected_new) and summary["changes"]["vanished"] == 1
    changes = query("SELECT change, video_id FROM crawl_changes WHERE change <> 'views'", str(root)).rows
    assert {v for c, v in changes if c == "added"} == expected_new
    assert [v for c, v in changes if c == "vanished"] == [vanished]
    crawls = query(
        "SELECT crawl_id, previous_crawl_id, added, vanished, captions_changed FROM crawls", str(root)
    ).rows
    assert crawls[1] == ("crawl-0001", "crawl-0000", len(expected_new), 1, 1)
    # Every kept video fits the default re-check budget (50); only the one change is recorded, and
    # the re-check wrote no `videos` row for it.
    captions = query(
        "SELECT video_id, captions_before, captions_after FROM crawl_changes WHERE change = 'captions'",
        str(root),
    ).rows
    assert captions == [(uncaptioned, kind_before[0][0], "none")]
    assert summary["changes"]["captions"] == 1 and len(kept_before) <= 50


@pytest.mark.slow
def test_recrawl_that_finds_nothing_new_is_still_a_generation(demo_site, tmp_path: Path) -> None:
    from tasks.report.numbers import crawl_history

    root = tmp_path / "data"
    cfg = demo_pipeline_config(demo_site.url)
    pipeline(cfg=cfg, data_root=str(root), stages=["tasks", "search", "captions"])
    summary = recrawl(cfg=cfg, data_root=str(root), stages=["search"], recheck_captions=0)
    assert summary["crawl_id"] == "crawl-0001" and summary["changes"] == {}  # the same world: no change rows
    crawls = query("SELECT crawl_id, previous_crawl_id, added, vanished FROM crawls", str(root)).rows
    assert [row[:2] for row in crawls] == [("crawl-0000", None), ("crawl-0001", "crawl-0000")]
    assert crawls[1][2:] == (0, 0)
    history = crawl_history(DataRoot.from_any(root))
    assert [(c["crawl_id"], c["compared_with"], c["gone"]) for c in history] == [
        ("crawl-0000", None, 0),
        ("crawl-0001", "crawl-0000", 0),
    ]


def _watch_requests(site) -> int:
    return sum(1 for line in site.requests if line.split(" ", 1)[1].startswith("/watch"))


def _search_requests(site) -> int:
    return sum(1 for line in site.requests if line.split(" ", 1)[1].startswith("/youtubei/v1/search"))


@pytest.mark.slow
def test_a_recrawl_stopped_half_way_is_finished_by_a_plain_rerun(site, tmp_path: Path) -> None:
    """A re-crawl halted by a bot check after its searches, run again as a user or a retried deployment run
    does (no crawl id): it finishes crawl-0001. Before, the rerun became crawl-0002: every task searched
    again, a second batch of known videos re-checked, and a generation that had added nothing recorded."""
    from tasks.demo.troubles import Troubles
    from tasks.search.plans import video_plans
    from tasks.youtube.errors import StageHalted

    root = tmp_path / "data"
    cfg = demo_pipeline_config(site.url)
    pipeline(cfg=cfg, data_root=str(root), stages=["tasks", "search"])
    original = site.world
    grown = original.grow()
    new = {v.id for v in grown.videos} - {v.id for v in original.videos}
    site.set_world(grown)
    try:
        site.set_troubles(Troubles(bot_check=1))  # the searches pass; the first watch page stops the probe
        with pytest.raises(StageHalted):
            recrawl(cfg=cfg, data_root=str(root), stages=["search"])
        site.set_troubles()
        searched = _search_requests(site)
        assert next_crawl_id(DataRoot.from_any(root)) == "crawl-0001"
        summary = recrawl(cfg=cfg, data_root=str(root), stages=["search"])
        assert _search_requests(site) == searched, "the rerun searched the tasks again"
    finally:
        site.set_world(original)
        site.set_troubles()

    assert summary["crawl_id"] == "crawl-0001" and summary["changes"] == {"added": len(new)}
    crawls = query("SELECT crawl_id, previous_crawl_id, added FROM crawls", str(root)).rows
    assert [c[:2] for c in crawls] == [("crawl-0000", None), ("crawl-0001", "crawl-0000")]
    assert crawls[1][2] == len(new)
    sources = sorted((p["crawl_id"], p["source"]) for p in video_plans(DataRoot.from_any(root)).values())
    assert sources == [("crawl-0000", "search"), ("crawl-0001", "recheck"), ("crawl-0001", "search")]
    # Finished now: the next scheduled run is the next generation.
    assert next_crawl_id(DataRoot.from_any(root)) == "crawl-0002"


@pytest.mark.slow
def test_the_first_crawl_run_again_after_a_recrawl_rechecks_nothing(site, tmp_path: Path) -> None:
    """`howto pipeline` run again after a re-crawl (its search is crawl-0000's): the re-crawl's new videos
    are not re-checked under crawl-0000. Before, they were (up to 50 probes of a finished crawl), and one
    removed since was recorded `unavailable_since` crawl-0000, a crawl before the one that found it."""
    from tasks.demo.troubles import Troubles
    from tasks.search.plans import RECHECK, video_plans

    root = tmp_path / "data"
    cfg = demo_pipeline_config(site.url)
    pipeline(cfg=cfg, data_root=str(root), stages=["tasks", "search"])
    original = site.world
    grown = original.grow()
    site.set_world(grown)
    try:
        recrawl(cfg=cfg, data_root=str(root), stages=["search"], recheck_captions=0)
        added = sorted(
            r[0]
            for r in query("SELECT video_id FROM video_catalog WHERE crawl_id = 'crawl-0001'", str(root)).rows
        )
        assert added
        site.set_troubles(Troubles(removed=frozenset(added)))
        watched = sum(1 for line in site.requests if line.split(" ", 1)[1].startswith("/watch"))
        pipeline(cfg=cfg, data_root=str(root), stages=["search"])
        assert sum(1 for line in site.requests if line.split(" ", 1)[1].startswith("/watch")) == watched
    finally:
        site.set_world(original)
        site.set_troubles()
    plans = video_plans(DataRoot.from_any(root)).values()
    assert not [p for p in plans if p["source"] == RECHECK and p["crawl_id"] == "crawl-0000"]
    assert query("SELECT count(*) FROM videos WHERE unavailable_since IS NOT NULL", str(root)).rows == [(0,)]


@pytest.mark.slow
def test_a_video_made_private_then_public_again_is_kept_again(site, tmp_path: Path) -> None:
    """Weekly re-crawls while a kept video goes private for two weeks: it is recorded gone once, not again
    while still private, and back (`returned`) when the search finds it public again; video_catalog keeps
    it again. Before, it stayed `unavailable` for good: a gone video was never probed again."""
    from tasks.demo.troubles import Troubles

    root = tmp_path / "data"
    cfg = demo_pipeline_config(site.url)
    pipeline(cfg=cfg, data_root=str(root), stages=["tasks", "search"])
    vid = min(r[0] for r in query("SELECT video_id FROM video_catalog WHERE keep", str(root)).rows)
    catalog = f"SELECT keep, drop_reason, unavailable_since FROM video_catalog WHERE video_id = '{vid}'"
    try:
        site.set_troubles(Troubles(private=frozenset([vid])))
        recrawl(cfg=cfg, data_root=str(root), stages=["search"])
        assert query(catalog, str(root)).rows == [(False, "unavailable", "crawl-0001")]
        recrawl(cfg=cfg, data_root=str(root), stages=["search"])  # still private: no news
        site.set_troubles()
        summary = recrawl(cfg=cfg, data_root=str(root), stages=["search"])
    finally:
        site.set_troubles()
    assert summary["changes"] == {"returned": 1}
    assert query(catalog, str(root)).rows == [(True, None, None)]
    crawls = query("SELECT crawl_id, vanished, returned FROM crawls", str(root)).rows
    assert crawls == [("crawl-0000", 0, 0), ("crawl-0001", 1, 0), ("crawl-0002", 0, 0), ("crawl-0003", 0, 1)]
    from tasks.report.numbers import crawl_history

    history = crawl_history(DataRoot.from_any(root))  # the report's generation lines
    assert [c["returned"] for c in history] == [0, 0, 0, 1]
    rows = query(
        f"SELECT crawl_id, unavailable_since FROM videos WHERE video_id = '{vid}' ORDER BY 1", str(root)
    )
    assert rows.rows == [("crawl-0000", None), ("crawl-0001", "crawl-0001")]


def _closed_port_url() -> str:
    """A loopback URL nothing listens on: every request is refused, as when YouTube is unreachable."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.slow
def test_a_recrawl_whose_every_search_failed_fails_and_is_resumed(site, tmp_path: Path) -> None:
    """A scheduled re-crawl during an outage: before, every search an error row, it still recorded an empty
    generation and ended Completed, so the deployment trigger ran features and training. Now the run fails
    (exit 2, one line naming how many searches failed), records no generation, and the next run redoes it."""
    from tasks.search.crawl_record import recrawl_finished
    from tests.flows.cli_checks import invoke

    root = tmp_path / "data"
    cfg = demo_pipeline_config(site.url)
    pipeline(cfg=cfg, data_root=str(root), stages=["tasks", "search"])
    n_tasks = query("SELECT count(DISTINCT task_id) FROM tasks WHERE keep", str(root)).rows[0][0]
    down = _closed_port_url()
    result = invoke("recrawl", "--demo-url", down, "--data-root", str(root), "--stage", "search",
                    "--set", "youtube.retries=0", "--set", "youtube.extractor_retries=0")  # fmt: skip
    assert result.exit_code == 2 and "Traceback" not in result.stderr, result.output
    line = result.stderr.strip().splitlines()[-1]  # after the progress lines
    assert (
        line.startswith("error: every search of crawl-0001 failed")
        and f"({n_tasks} of {n_tasks} tasks" in line
    )
    assert "Connection refused" in line and "run the same command again" in line
    data = DataRoot.from_any(root)
    assert not recrawl_finished(data, "crawl-0001")  # no generation recorded: nothing to trigger on
    assert next_crawl_id(data) == "crawl-0001"
    state = recrawl(cfg=demo_pipeline_config(down), data_root=str(root), stages=["search"], return_state=True)
    assert state.is_failed()  # what the deployment trigger (on Completed) sees
    # YouTube back: the next run finishes crawl-0001, searching every task again.
    summary = recrawl(cfg=cfg, data_root=str(root), stages=["search"], recheck_captions=0)
    assert summary["crawl_id"] == "crawl-0001" and summary["search"]["search_errors"] == 0
    assert recrawl_finished(data, "crawl-0001") and next_crawl_id(data) == "crawl-0002"


@pytest.mark.slow
def test_a_crawl_after_an_abandoned_failed_one_is_compared_with_the_last_that_searched(
    site, tmp_path: Path
) -> None:
    """The user leaves a crawl whose every search failed (an outage) and starts the next generation with
    `--crawl-id`, as the README allows. Before, the new crawl took the failed one as its previous generation
    (0 hits: a changed view count went unreported), recorded the failed one as a generation (an empty
    `crawl_changes` shard), and the `crawls` view listed it like any other. Now it is compared with the last
    crawl whose searches got answers, the failed one stays unrecorded, and the view and report mark it."""
    from tasks.report.numbers import crawl_history
    from tasks.search.crawl_record import recrawl_finished
    from tests.flows.cli_checks import invoke

    root = tmp_path / "data"
    pipeline(cfg=demo_pipeline_config(site.url), data_root=str(root), stages=["tasks", "search"])
    quick = ["--set", "youtube.retries=0", "--set", "youtube.extractor_retries=0"]
    result = invoke("recrawl", "--demo-url", _closed_port_url(), "--data-root", str(root), "--stage", "search",
                    *quick)  # fmt: skip
    assert result.exit_code == 2 and "every search of crawl-0001 failed" in result.stderr, result.output
    vid, views = query(
        "SELECT video_id, max(view_count) FROM search_results WHERE crawl_id = 'crawl-0000' AND keep "
        "GROUP BY 1 ORDER BY 1 LIMIT 1",
        str(root),
    ).rows[0]
    original = site.world
    more = copy.copy(original)  # the one change the next generation must report: a view count
    more.videos = [
        dataclasses.replace(v, view_count=views + 1000) if v.id == vid else v for v in original.videos
    ]
    site.set_world(more)
    try:
        result = invoke("recrawl", "--demo-url", site.url, "--data-root", str(root), "--stage", "search",
                        "--crawl-id", "crawl-0002", "--recheck-captions", "0", *quick)  # fmt: skip
    finally:
        site.set_world(original)
    assert result.exit_code == 0, result.output
    changes = query("SELECT crawl_id, previous_crawl_id, change, video_id, views_before, views_after "
                    "FROM crawl_changes", str(root)).rows  # fmt: skip
    assert changes == [("crawl-0002", "crawl-0000", "views", vid, views, views + 1000)]
    assert not recrawl_finished(DataRoot.from_any(root), "crawl-0001")  # not recorded as a generation
    crawls = query("SELECT crawl_id, previous_crawl_id, search_hits, status FROM crawls", str(root)).rows
    assert [(c, p, s) for c, p, _, s in crawls] == [
        ("crawl-0000", None, "ok"), ("crawl-0001", "crawl-0000", "failed"), ("crawl-0002", "crawl-0000", "ok")
    ]  # fmt: skip
    history = {c["crawl_id"]: c for c in crawl_history(DataRoot.from_any(root))}
    assert history["crawl-0001"]["failed"] and not history["crawl-0002"]["failed"]
    assert (
        history["crawl-0002"]["compared_with"] == "crawl-0000" and history["crawl-0002"]["views_changed"] == 1
    )


class _RefusingSite(BaseHTTPRequestHandler):
    """A site that answers every request 404 (yt-dlp: a refusal for good, a failed row), counting them."""

    requests = 0

    def _refuse(self) -> None:
        type(self).requests += 1
        self.send_error(404)

    do_GET = do_POST = do_HEAD = _refuse

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.mark.slow
def test_a_recrawl_whose_every_search_was_refused_fails_and_searches_again(site, tmp_path: Path) -> None:
    """A re-crawl against a site that refuses every query (a wrong site URL, an address turned away): before,
    only error rows counted, so every search a failed row (refused for good) completed an empty generation
    and triggered features and training. Now the run fails in one line naming the refusals and what to check,
    records no generation, and the same command, run again, asks again; once the site answers, it finishes."""
    from tasks.search.crawl_record import recrawl_finished
    from tests.flows.cli_checks import invoke

    root = tmp_path / "data"
    cfg = demo_pipeline_config(site.url)
    pipeline(cfg=cfg, data_root=str(root), stages=["tasks", "search"])
    n_tasks = query("SELECT count(DISTINCT task_id) FROM tasks WHERE keep", str(root)).rows[0][0]
    data = DataRoot.from_any(root)
    _RefusingSite.requests = 0
    with serving(_RefusingSite) as refusing:
        args = ["recrawl", "--demo-url", refusing, "--data-root", str(root), "--stage", "search",
                "--set", "youtube.retries=0", "--set", "youtube.extractor_retries=0"]  # fmt: skip
        for attempt in (1, 2):  # the rerun searches again: it does not fail at once on kept refusals
            before = _RefusingSite.requests
            result = invoke(*args)
            assert result.exit_code == 2 and "Traceback" not in result.stderr, result.output
            line = result.stderr.strip().splitlines()[-1]  # after the progress lines
            assert line.startswith("error: every search of crawl-0001 failed"), (attempt, line)
            assert f"({n_tasks} of {n_tasks} tasks, {n_tasks} refused; first error: how to " in line
            assert "HTTP Error 404" in line
            assert "youtube.site_url (--demo-url)" in line and "run the same command again" in line
            assert _RefusingSite.requests - before == n_tasks, attempt  # one search per task
            assert not recrawl_finished(data, "crawl-0001") and next_crawl_id(data) == "crawl-0001"
    # The site answers again: the same crawl finishes, every task searched, no refusal kept.
    summary = recrawl(cfg=cfg, data_root=str(root), stages=["search"], recheck_captions=0)
    assert summary["crawl_id"] == "crawl-0001" and summary["search"]["search_errors"] == 0
    assert summary["search"]["search_hits"] > 0
    statuses = query(
        "SELECT DISTINCT status FROM search_results WHERE crawl_id = 'crawl-0001'", str(root)
    ).rows
    assert statuses == [("ok",)]
    assert recrawl_finished(data, "crawl-0001") and next_crawl_id(data) == "crawl-0002"


@pytest.mark.slow
def test_a_recheck_retried_by_the_next_crawl_reports_what_it_saw(site, tmp_path: Path) -> None:
    """A caption re-check that timed out in crawl-0001 (an error row: retried by the next run) and was retried
    by crawl-0002's run after the captions were taken down. Before, what the retry saw went to crawl-0001's
    re-check shard, whose generation was recorded already, and crawl-0002 took it as known before: the change
    was never reported. Now crawl-0001's record is written again with it."""
    from tasks.demo.troubles import Troubles

    root = tmp_path / "data"
    cfg = demo_pipeline_config(site.url)
    pipeline(cfg=cfg, data_root=str(root), stages=["tasks", "search"])
    vid = min(r[0] for r in query("SELECT video_id FROM video_catalog WHERE keep", str(root)).rows)
    quick = {"socket_timeout_s": 0.5, "retries": 0, "extractor_retries": 0}
    impatient = cfg.model_copy(update={"youtube": cfg.youtube.model_copy(update=quick)})
    original = site.world
    try:
        site.set_troubles(Troubles(slow_s=2.0, slow_prefix="/watch", slow_ids=frozenset([vid])))
        first = recrawl(cfg=impatient, data_root=str(root), stages=["search"], recheck_captions=100)
        assert first["crawl_id"] == "crawl-0001" and first["changes"] == {}
        errors = query(f"SELECT crawl_id, status FROM videos WHERE video_id = '{vid}' ORDER BY 1", str(root))
        assert errors.rows == [("crawl-0000", "ok"), ("crawl-0001", "error")]
        site.set_troubles()
        taken_down = copy.copy(original)
        taken_down.videos = [
            dataclasses.replace(v, captions="none") if v.id == vid else v for v in original.videos
        ]
        site.set_world(taken_down)
        # A week later: the info files of the videos re-checked fine are too old to stand in for a probe.
        later = cfg.model_copy(update={"youtube": cfg.youtube.model_copy(update={"info_reuse_max_age_s": 0})})
        watched = _watch_requests(site)
        second = recrawl(cfg=later, data_root=str(root), stages=["search"], recheck_captions=0)
        assert _watch_requests(site) - watched == 1  # the timed-out re-check alone, not its whole shard
    finally:
        site.set_world(original)
        site.set_troubles()
    assert second["crawl_id"] == "crawl-0002"
    changes = query(
        "SELECT crawl_id, video_id, captions_after FROM crawl_changes WHERE change = 'captions'", str(root)
    )
    assert changes.rows == [("crawl-0001", vid, "none")]
    crawls = query("SELECT crawl_id, captions_changed FROM crawls ORDER BY 1", str(root)).rows
    assert crawls == [("crawl-0000", 0), ("crawl-0001", 1), ("crawl-0002", 0)]
    assert second["re_recorded"] == ["crawl-0001"]
    # Recorded once: the run after it neither re-records crawl-0001 nor reports the change again.
    third = recrawl(cfg=cfg, data_root=str(root), stages=["search"], recheck_captions=0)
    assert third["re_recorded"] == [] and third["changes"] == {}
