"""The captions shard's per-video work against the demo site: track choice, stale info, failures as rows."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from storage.layout import DataRoot
from tasks.captions.config import FetchCaptionsConfig
from tasks.captions.stage import CaptionRun, vtt_relpath
from tasks.demo.site import DemoSite
from tasks.demo.troubles import Troubles
from tasks.search.info_store import save_info
from tasks.youtube.access import YoutubeAccess
from tasks.youtube.client import VideoError, YoutubeClient
from tasks.youtube.errors import ErrorKind, StageHalted
from tasks.youtube.politeness import PolitenessSettings
from tasks.youtube.thread_clients import ThreadClients

NO_WAIT = PolitenessSettings(requests_per_s=0, jitter_s=0)


@pytest.fixture()
def site(demo_site: DemoSite) -> DemoSite:
    """The shared session demo site (tests/conftest.py); tests that switch troubles switch them back."""
    return demo_site


def access_for(site: DemoSite, **kw: Any) -> YoutubeAccess:
    return YoutubeAccess(site_url=site.url, politeness=NO_WAIT, retries=0, extractor_retries=0, **kw)


@pytest.fixture()
def run_for(site: DemoSite, tmp_path: Path) -> Iterator[Callable[..., CaptionRun]]:
    """Makes the captions work of one shard against the demo site (stage's default config, data root
    tmp_path); the clients' caption folders are removed at the end, as the stage's own `with` does."""
    made: list[ThreadClients] = []

    def make(**access: Any) -> CaptionRun:
        made.append(ThreadClients(access_for(site, **access)))
        return CaptionRun(DataRoot.from_any(tmp_path), FetchCaptionsConfig(), {}, made[-1])

    yield make
    for clients in made:
        clients.close()


def probe(site: DemoSite, vid: str) -> dict[str, Any]:
    client = YoutubeClient(access_for(site))
    return client.probe(client.video_url(vid))


def first(site: DemoSite, captions: str) -> str:
    return next(
        v.id for v in site.world.videos if v.captions == captions and v.status == "ok" and v.language == "en"
    )


def row(site: DemoSite, vid: str, lang: str, kind: str, info_path: str | None = None) -> dict[str, Any]:
    return {
        "video_id": vid,
        "task_id": site.world.video(vid).task,
        "caption_lang": lang,
        "caption_kind": kind,
        "info_path": info_path,
        "url": None,
        "crawl_id": "c1",
    }


def test_captions_get_the_asked_kind_when_both_share_a_key(site: DemoSite) -> None:
    vid = first(site, "manual+auto")
    info = probe(site, vid)
    assert info["subtitles"].get("en") and info["automatic_captions"].get("en")
    with YoutubeClient(access_for(site)) as client:
        auto = client.captions(info, "en", "auto").decode()
        manual = client.captions(info, "en", "manual").decode()
        with pytest.raises(VideoError) as missing:
            client.captions(info, "de", "manual")
    assert "<c>" in auto and "<c>" not in manual
    assert missing.value.kind is ErrorKind.UNAVAILABLE


def test_stale_info_is_probed_again_then_kept(
    site: DemoSite, tmp_path: Path, run_for: Callable[..., CaptionRun]
) -> None:
    root = DataRoot.from_any(tmp_path)
    vid = first(site, "auto")
    save_info(root, vid, probe(site, vid))
    run = run_for(info_reuse_max_age_s=0)
    caption, clips = run.one(row(site, vid, "en-orig", "auto", f"info/{vid}.info.json"))
    assert caption["status"] == "ok" and caption["keep"] and clips
    assert run.stats["reprobed"] == 1 and run.stats["downloaded_vtt"] == 1
    assert (tmp_path / vtt_relpath(vid, "en-orig")).exists()
    again = run_for(info_reuse_max_age_s=0)
    assert again.one(row(site, vid, "en-orig", "auto"))[0]["status"] == "ok"
    assert again.stats == {"reused_vtt": 1, "downloaded_vtt": 0, "reprobed": 0, "reused_rows": 0}


@pytest.mark.parametrize("size", [math.inf, math.nan])
def test_kept_info_with_a_size_that_is_no_number_is_probed_again(
    site: DemoSite, tmp_path: Path, run_for: Callable[..., CaptionRun], size: float
) -> None:
    """A kept info file with `Infinity` or `NaN` (an older run's, or a crafted root's) made yt-dlp itself
    raise OverflowError / ValueError on it (its format table) and the captions shard stop."""
    root = DataRoot.from_any(tmp_path)
    vid = first(site, "auto")
    info = probe(site, vid)
    for fmt in info["formats"]:
        fmt["filesize"] = size
    save_info(root, vid, json.loads(json.dumps(info)))
    run = run_for()
    caption, clips = run.one(row(site, vid, "en-orig", "auto", f"info/{vid}.info.json"))
    assert caption["status"] == "ok" and caption["keep"] and clips
    assert run.stats["reprobed"] == 1 and run.stats["downloaded_vtt"] == 1


def test_private_video_is_a_permanent_row(
    site: DemoSite, tmp_path: Path, run_for: Callable[..., CaptionRun]
) -> None:
    vid = first(site, "manual")
    site.set_troubles(Troubles(private=frozenset({vid})))
    try:
        caption, clips = run_for().one(row(site, vid, "en", "manual"))
    finally:
        site.set_troubles()
    assert (caption["status"], caption["keep"], caption["drop_reason"], clips) == (
        "failed",
        False,
        "unavailable",
        [],
    )


def test_corrupt_kept_file_is_recorded_not_raised(
    site: DemoSite, tmp_path: Path, run_for: Callable[..., CaptionRun]
) -> None:
    vid = first(site, "auto")
    (tmp_path / "vtt").mkdir()
    (tmp_path / vtt_relpath(vid, "en")).write_bytes(b"\x89PNG\r\n\x1a\n not captions")
    caption, clips = run_for().one(row(site, vid, "en", "auto"))
    assert (caption["status"], caption["drop_reason"], clips) == ("failed", "unreadable_captions", [])
    assert caption["error"].startswith(f"vtt/{vid}.en.vtt: ")


def test_bad_language_key_never_becomes_a_path(
    site: DemoSite, tmp_path: Path, run_for: Callable[..., CaptionRun]
) -> None:
    with pytest.raises(ValueError):
        vtt_relpath("dQw4w9WgXcQ", "../../etc")
    caption, _ = run_for().one(row(site, first(site, "auto"), "../x", "auto"))
    assert caption["status"] == "failed" and caption["vtt_path"] is None


@pytest.mark.parametrize("lang", ["../../etc", "en/x", "en-x\n", "en\x00", ""])
def test_a_language_key_that_is_not_one_plain_name_is_refused(lang: str) -> None:
    """ "en-x\n" (a key a hostile extractor can give, and English by its prefix) passed the `$` of the old
    check: a newline in the kept file's name."""
    with pytest.raises(ValueError, match="bad caption language key"):
        vtt_relpath("dQw4w9WgXcQ", lang)


def test_caption_429s_back_off_then_succeed(site: DemoSite, tmp_path: Path) -> None:
    vid = first(site, "manual")
    info = probe(site, vid)
    polite = PolitenessSettings(
        requests_per_s=0, jitter_s=0, backoff_base_s=0.01, backoff_max_s=0.02, max_backoffs=5
    )
    site.set_troubles(Troubles(too_many_requests=2))
    try:
        with YoutubeClient(YoutubeAccess(site_url=site.url, retries=0, politeness=polite)) as client:
            data = client.captions(info, "en", "manual")
            trips = client.politeness.breaker.trips
    finally:
        site.set_troubles()
    # The 429s are waited out under the one yt-dlp call: the caption request itself is sent again.
    assert data.startswith(b"WEBVTT") and trips >= 2 and client.requests == 1 and client.http_requests == 3
    assert client.counts == {"error:rate_limited": 2}


def test_bot_check_on_a_reprobe_halts_the_shard(
    site: DemoSite, tmp_path: Path, run_for: Callable[..., CaptionRun]
) -> None:
    vid = first(site, "auto")
    run = run_for()
    site.set_troubles(Troubles(bot_check=1))
    try:
        with pytest.raises(StageHalted):
            run.run([row(site, vid, "en-orig", "auto")], None)
    finally:
        site.set_troubles()
