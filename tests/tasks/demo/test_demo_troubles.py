"""Every trouble switch makes yt-dlp, httpx or ffmpeg fail (or report) exactly as the real web does."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from yt_dlp.utils import DownloadError, ExtractorError

from tasks.demo.site import DemoSite
from tasks.demo.troubles import Troubles
from tasks.demo.videos import DemoVideo
from tasks.youtube.demo_extractors import PARAM_URL, demo_ydl

QUIET = {"quiet": True, "no_warnings": True, "noprogress": True, "retries": 0, "extractor_retries": 0}


def _video(site: DemoSite) -> DemoVideo:
    return next(v for v in site.world.usable if v.captions == "auto")


def _probe(site: DemoSite, video: DemoVideo, **params: Any) -> dict:
    with demo_ydl({**QUIET, **params}) as ydl:
        return ydl.extract_info(f"{site.url}/watch?v={video.id}", download=False)


def _probe_error(site: DemoSite, video: DemoVideo, **params: Any) -> DownloadError:
    with pytest.raises(DownloadError) as caught:
        _probe(site, video, **params)
    return caught.value


def test_low_views_and_long_duration_are_reported_in_search_and_probe(site: DemoSite) -> None:
    v = _video(site)
    site.set_troubles(Troubles(low_views={v.id}, long_videos=[v.id]))
    info = _probe(site, v)
    assert info["view_count"] < 100 and info["duration"] > 2000
    with demo_ydl({**QUIET, "extract_flat": "in_playlist", PARAM_URL: site.url}) as ydl:
        entries = ydl.extract_info(f"demosearch50:{v.task}", download=False)["entries"]
    hit = next(e for e in entries if e["id"] == v.id)
    assert hit["view_count"] < 100 and hit["duration"] > 2000
    assert v.path is not None and v.duration_ms < 60_000  # metadata only: the file is still short


@pytest.mark.parametrize(
    ("switch", "message"),
    [
        ("private", "Private video. Sign in if you've been granted access to this video"),
        ("removed", "Video unavailable. This video has been removed by the uploader"),
    ],
)
def test_private_and_removed_raise_ytdlps_errors(site: DemoSite, switch: str, message: str) -> None:
    v = _video(site)
    site.set_troubles(Troubles(**{switch: {v.id}}))
    err = _probe_error(site, v)
    assert f"ERROR: [demo] {v.id}: {message}" in str(err)
    cause = err.exc_info[1]
    assert isinstance(cause, ExtractorError) and cause.expected


def test_worlds_own_private_and_removed_videos(site: DemoSite) -> None:
    for v in site.world.videos:
        if v.status != "ok":
            assert ("Private video" if v.status == "private" else "Video unavailable") in str(
                _probe_error(site, v)
            )


def test_bot_check_for_the_first_n_watch_pages(site: DemoSite) -> None:
    v = _video(site)
    site.set_troubles(Troubles(bot_check=1))
    err = _probe_error(site, v)
    assert "Sign in to confirm you\u2019re not a bot" in str(err) and "--cookies" in str(err)
    assert _probe(site, v)["id"] == v.id  # the second one passes


def test_http_429_for_the_first_n_requests(site: DemoSite) -> None:
    v = _video(site)
    site.set_troubles(Troubles(too_many_requests=2, retry_after_s=7))
    err = _probe_error(site, v)
    assert "HTTP Error 429: Too Many Requests" in str(err)
    with pytest.raises(httpx.HTTPStatusError) as caught:
        httpx.get(f"{site.url}/api.php", params={"action": "query"}).raise_for_status()
    assert caught.value.response.status_code == 429 and caught.value.response.headers["Retry-After"] == "7"
    assert httpx.get(f"{site.url}/robots.txt").status_code == 200  # third request: served


def test_server_error_answers_503_for_those_watch_pages_only(site: DemoSite) -> None:
    v, other = site.world.usable[:2]
    site.set_troubles(Troubles(server_error={v.id}))
    assert "HTTP Error 503: Service Unavailable" in str(_probe_error(site, v))
    assert httpx.get(f"{site.url}/watch", params={"v": v.id}).status_code == 503
    assert _probe(site, other)["id"] == other.id  # other videos are served as usual
    site.set_troubles()
    assert _probe(site, v)["formats"]  # the fault is gone with the switch


def test_slow_response_runs_past_the_client_timeout(site: DemoSite) -> None:
    v = _video(site)
    site.set_troubles(Troubles(slow_s=2.0, slow_prefix="/watch"))
    assert "Read timed out" in str(_probe_error(site, v, socket_timeout=0.5))
    site.set_troubles(Troubles(slow_s=2.0, slow_prefix="/api.php"))
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{site.url}/api.php", params={"action": "query"}, timeout=0.5)
    assert httpx.get(f"{site.url}/robots.txt", timeout=0.5).status_code == 200  # other paths unaffected


def test_slow_ids_slow_only_those_videos(site: DemoSite) -> None:
    v, other = site.world.usable[:2]
    site.set_troubles(Troubles(slow_s=2.0, slow_prefix="/watch", slow_ids={v.id}))
    assert "Read timed out" in str(_probe_error(site, v, socket_timeout=0.5))
    assert _probe(site, other)["id"] == other.id  # another video on the same path is not slowed


def test_truncated_caption_file(site: DemoSite, tmp_path: Path) -> None:
    v = _video(site)
    site.set_troubles(Troubles(truncated_captions={v.id}))
    opts = {"skip_download": True, "writeautomaticsub": True, "subtitlesformat": "vtt",
            "subtitleslangs": ["en-orig"], "outtmpl": str(tmp_path / "%(id)s.%(ext)s")}  # fmt: skip
    with pytest.raises(DownloadError, match=r"Unable to download video subtitles for 'en-orig'.*bytes read"):
        with demo_ydl({**QUIET, **opts}) as ydl:
            ydl.download([f"{site.url}/watch?v={v.id}"])
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{site.url}/api/timedtext", params={"v": v.id, "lang": "en", "kind": "asr", "fmt": "vtt"})


def test_few_words_caption_track(site: DemoSite, tmp_path: Path) -> None:
    v = _video(site)
    site.set_troubles(Troubles(few_words={v.id}))
    opts = {"skip_download": True, "writeautomaticsub": True, "subtitlesformat": "vtt",
            "subtitleslangs": ["en-orig"], "outtmpl": str(tmp_path / "%(id)s.%(ext)s")}  # fmt: skip
    with demo_ydl({**QUIET, **opts}) as ydl:
        ydl.download([f"{site.url}/watch?v={v.id}"])
    text = (tmp_path / f"{v.id}.en-orig.vtt").read_text()
    assert text == v.caption_vtt(True, "en", None, max_words=40) and len(v.words) >= 100


def test_corrupt_video_downloads_but_does_not_decode(site: DemoSite, tmp_path: Path) -> None:
    v = _video(site)
    site.set_troubles(Troubles(corrupt_videos={v.id}))
    with demo_ydl({**QUIET, "outtmpl": str(tmp_path / "%(id)s.%(ext)s")}) as ydl:
        assert ydl.download([f"{site.url}/watch?v={v.id}"]) == 0
    mp4 = tmp_path / f"{v.id}.mp4"
    assert v.path is not None and mp4.stat().st_size == v.path.stat().st_size
    probe = subprocess.run(["ffprobe", "-v", "error", str(mp4)], capture_output=True, text=True)
    assert probe.returncode != 0 and "Invalid data found when processing input" in probe.stderr


@pytest.mark.slow
def test_grown_world_shows_new_videos_to_a_second_crawl(site: DemoSite) -> None:
    query = f"how to {site.world.articles[0].title}"
    with demo_ydl({**QUIET, "extract_flat": "in_playlist", PARAM_URL: site.url}) as ydl:
        first = {e["id"] for e in ydl.extract_info(f"demosearch100:{query}", download=False)["entries"]}
    site.set_world(site.world.grow())
    with demo_ydl({**QUIET, "extract_flat": "in_playlist", PARAM_URL: site.url}) as ydl:
        second = {e["id"] for e in ydl.extract_info(f"demosearch100:{query}", download=False)["entries"]}
    new = second - first
    assert first < second and new and all(site.world.video(i).generation == 1 for i in new)  # type: ignore[union-attr]
    assert _probe(site, site.world.video(sorted(new)[0]))["formats"]  # type: ignore[arg-type]
