"""Every HTTP request of the real client, against the demo site: one rate cap for pages, caption files and
media alike, 429 storms on .vtt and .mp4 requests waited out (Retry-After honoured), and the media caps."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasks.demo.site import DemoSite
from tasks.demo.troubles import Troubles
from tasks.youtube.access import YoutubeAccess
from tasks.youtube.client import MediaCapExceeded, YoutubeClient
from tasks.youtube.errors import ErrorKind, StageHalted
from tasks.youtube.politeness import Politeness, PolitenessSettings
from tasks.youtube.video_download import DownloadSettings


@pytest.fixture
def site(demo_site: DemoSite) -> Iterator[DemoSite]:
    demo_site.set_troubles()
    yield demo_site
    demo_site.set_troubles()


def make_client(site: DemoSite, **polite: Any) -> YoutubeClient:
    settings = PolitenessSettings(
        **{"requests_per_s": 0, "jitter_s": 0, "backoff_base_s": 0.01, "backoff_max_s": 5.0, **polite}
    )
    access = YoutubeAccess(site_url=site.url, politeness=settings, retries=0, extractor_retries=0)
    return YoutubeClient(access, politeness=Politeness(settings))  # its own cap and breaker


def manual_video(site: DemoSite) -> str:
    return next(v.id for v in site.world.usable if v.captions in ("manual", "manual+auto"))


def new_requests(site: DemoSite, before: int) -> list[str]:
    return list(site.requests)[before:]


def test_one_rate_cap_spaces_every_http_request(site: DemoSite, tmp_path: Path) -> None:
    vid = manual_video(site)
    client = make_client(site, requests_per_s=5)
    before, started = len(site.requests), time.monotonic()
    with client:
        hits = client.search(site.world.videos[0].title, 3, "demosearch")
        info = client.probe(client.video_url(vid))
        client.captions(info, "en", "manual")
        client.video(vid, client.video_url(vid), DownloadSettings(tmp_path, min_free_gb=0), info)
    sent = [r.split("?")[0] for r in new_requests(site, before)]
    assert hits and sent == [
        "POST /youtubei/v1/search",
        "GET /watch",
        "GET /api/timedtext",
        "GET /videoplayback",
    ]
    assert client.http_requests == 4 and client.requests == 5  # the download also selects its format
    assert time.monotonic() - started >= 0.6 - 0.01  # 4 requests at 5/s: three full intervals


def test_429_storm_on_caption_files_waits_out_retry_after(site: DemoSite) -> None:
    vid = manual_video(site)
    client = make_client(site, max_backoffs=5)
    with client:
        info = client.probe(client.video_url(vid))
        site.set_troubles(Troubles(too_many_requests=3, retry_after_s=1))
        before, started = len(site.requests), time.monotonic()
        data = client.captions(info, "en", "manual")
        waited = time.monotonic() - started
    sent = new_requests(site, before)
    assert data.startswith(b"WEBVTT") and len(sent) == 4 and all("/api/timedtext" in r for r in sent)
    assert waited >= 3 * 1.0  # each 429 said Retry-After: 1, longer than the 0.01 s back-off
    assert client.counts == {"error:rate_limited": 3} and client.politeness.breaker.trips == 3


def test_429_storm_on_media_loses_no_video(site: DemoSite, tmp_path: Path) -> None:
    vid = manual_video(site)
    client = make_client(site, max_backoffs=6)
    with client:
        info = client.probe(client.video_url(vid))
        site.set_troubles(Troubles(too_many_requests=5, retry_after_s=0))
        before = len(site.requests)
        path = client.video(vid, client.video_url(vid), DownloadSettings(tmp_path, min_free_gb=0), info)
    sent = new_requests(site, before)
    assert len(sent) == 6 and all("/videoplayback" in r for r in sent)  # the kept info: no page request
    assert path.stat().st_size == site.world.video(vid).path.stat().st_size  # type: ignore[union-attr]
    assert client.counts == {"error:rate_limited": 5}


def test_429s_past_the_breaker_halt_a_download(site: DemoSite, tmp_path: Path) -> None:
    vid = manual_video(site)
    client = make_client(site, max_backoffs=2)
    with client:
        info = client.probe(client.video_url(vid))
        site.set_troubles(Troubles(too_many_requests=10, retry_after_s=0))
        with pytest.raises(StageHalted) as halted:
            client.video(vid, client.video_url(vid), DownloadSettings(tmp_path, min_free_gb=0), info)
    assert halted.value.kind is ErrorKind.RATE_LIMITED and "--rate" in halted.value.advice
    assert not list(tmp_path.glob(f"{vid}.mp4"))


def test_size_cap_refuses_before_any_media_request(site: DemoSite, tmp_path: Path) -> None:
    vid = manual_video(site)
    client = make_client(site)
    with client:
        info = client.probe(client.video_url(vid))
        before = len(site.requests)
        with pytest.raises(MediaCapExceeded) as capped:
            client.video(vid, "", DownloadSettings(tmp_path, min_free_gb=0, max_bytes=10_000), info)
    assert capped.value.reason == "too_large" and capped.value.kind is ErrorKind.UNAVAILABLE
    assert new_requests(site, before) == [] and not list(tmp_path.iterdir())


def test_size_cap_backstop_when_only_the_server_tells_the_size(site: DemoSite, tmp_path: Path) -> None:
    vid = manual_video(site)
    client = make_client(site)
    with client:
        info = client.probe(client.video_url(vid))
        for f in [info, *info["formats"]]:
            f.pop("filesize", None)  # metadata without a size: yt-dlp learns it from Content-Length
        before = len(site.requests)
        with pytest.raises(MediaCapExceeded, match="max-filesize") as capped:
            client.video(vid, "", DownloadSettings(tmp_path, min_free_gb=0, max_bytes=10_000), info)
    assert capped.value.reason == "too_large" and len(new_requests(site, before)) == 1
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".mp4"]
