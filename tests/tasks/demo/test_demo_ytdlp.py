"""yt-dlp with our extractors searches, probes and downloads from the demo site as it does from YouTube."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from yt_dlp.utils import DownloadError

from tasks.demo.site import DemoSite
from tasks.demo.youtube_pages import PAGE_SIZE
from tasks.youtube.demo_extractors import PARAM_URL, demo_ydl

QUIET = {"quiet": True, "no_warnings": True, "noprogress": True}


def _search(site: DemoSite, query: str, n: int, **params: Any) -> dict:
    with demo_ydl({**QUIET, "extract_flat": "in_playlist", PARAM_URL: site.url, **params}) as ydl:
        return ydl.extract_info(f"demosearch{n}:{query}", download=False)


def test_search_returns_ranked_flat_entries_over_pages(site: DemoSite) -> None:
    before = len(site.requests)
    result = _search(site, "how to make pancakes", 50)
    pages = [r for r in list(site.requests)[before:] if "/youtubei/v1/search" in r]
    entries = result["entries"]
    world = site.world
    assert len(entries) == len(world.videos) and len(pages) == -(-len(world.videos) // PAGE_SIZE) >= 3
    task_ids = {v.id for v in world.videos_for("Make Pancakes")}
    assert {e["id"] for e in entries[: len(task_ids)]} == task_ids  # the task's own videos rank first
    e = entries[0]
    video = world.video(e["id"])
    assert video is not None
    assert e["_type"] == "url" and e["ie_key"] == "DemoVideo" and e["url"] == f"{site.url}/watch?v={e['id']}"
    assert (e["title"], e["duration"], e["view_count"]) == (
        video.title,
        video.reported_duration_s,
        video.view_count,
    )
    assert len(_search(site, "how to make pancakes", 7)["entries"]) == 7


def test_search_reads_the_site_url_from_the_environment(
    site: DemoSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOWTO_DEMO_URL", site.url)
    with demo_ydl({**QUIET, "extract_flat": "in_playlist"}) as ydl:
        assert len(ydl.extract_info("demosearch3:grill zucchini", download=False)["entries"]) == 3


def test_probe_gives_a_youtube_shaped_info_dict(site: DemoSite) -> None:
    world = site.world
    video = next(v for v in world.usable if v.captions == "manual+auto")
    with demo_ydl(QUIET) as ydl:
        info = ydl.extract_info(f"{site.url}/watch?v={video.id}", download=False)
    assert info["extractor"] == "demo" and info["id"] == video.id and info["live_status"] == "not_live"
    assert (info["title"], info["duration"], info["view_count"], info["channel"], info["upload_date"]) == (
        video.title, video.reported_duration_s, video.view_count, video.channel, video.upload_date)  # fmt: skip
    (fmt,) = info["formats"]
    assert (fmt["ext"], fmt["width"], fmt["height"], fmt["vcodec"][:4], fmt["acodec"][:4]) == (
        "mp4", 320, 240, "avc1", "mp4a")  # fmt: skip
    assert set(info["subtitles"]) == {"en"} and set(info["automatic_captions"]) == {"en", "en-orig"}
    for tracks in [*info["subtitles"].values(), *info["automatic_captions"].values()]:
        assert [t["ext"] for t in tracks] == ["vtt"] and "tlang=" not in tracks[0]["url"]
    subs, autos = video.tracks()
    assert {t.key for t in subs} == set(info["subtitles"]) and {t.key for t in autos} == set(
        info["automatic_captions"]
    )


def test_non_english_video_lists_english_as_tlang_translation(site: DemoSite) -> None:
    video = next(v for v in site.world.videos if v.language != "en")
    with demo_ydl(QUIET) as ydl:
        info = ydl.extract_info(f"{site.url}/watch?v={video.id}", download=False)
    autos = info["automatic_captions"]
    assert set(autos) == {"es-orig", "es", "en"} and not info["subtitles"]
    assert "tlang=en" in autos["en"][0]["url"] and "tlang" not in autos["es-orig"][0]["url"]


def test_downloads_captions_then_video_through_ytdlp(site: DemoSite, tmp_path: Path) -> None:
    video = next(v for v in site.world.usable if v.captions == "auto")
    url = f"{site.url}/watch?v={video.id}"
    out = str(tmp_path / "%(id)s.%(ext)s")
    caption_opts = {"skip_download": True, "writesubtitles": True, "writeautomaticsub": True,
                    "subtitlesformat": "vtt", "subtitleslangs": ["en-orig"], "outtmpl": out}  # fmt: skip
    with demo_ydl({**QUIET, **caption_opts}) as ydl:
        assert ydl.download([url]) == 0
    vtt = (tmp_path / f"{video.id}.en-orig.vtt").read_text()
    assert vtt == video.caption_vtt(asr=True, lang="en", tlang=None)
    assert not (tmp_path / f"{video.id}.mp4").exists()
    with demo_ydl({**QUIET, "outtmpl": out}) as ydl:
        assert ydl.download([url]) == 0
    mp4 = tmp_path / f"{video.id}.mp4"
    assert video.path is not None and mp4.read_bytes() == video.path.read_bytes()
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(mp4)],
                           capture_output=True, check=True, text=True)  # fmt: skip
    streams = {s["codec_type"]: s for s in json.loads(probe.stdout)["streams"]}
    assert streams["video"]["codec_name"] == "h264" and streams["audio"]["codec_name"] == "aac"
    assert (streams["video"]["width"], streams["video"]["height"], streams["video"]["r_frame_rate"]) == (
        320,
        240,
        "24/1",
    )
    assert abs(float(streams["video"]["duration"]) * 1000 - video.duration_ms) < 100


def test_video_supports_range_requests(site: DemoSite) -> None:
    video = site.world.usable[0]
    r = httpx.get(
        f"{site.url}/videoplayback", params={"v": video.id, "itag": "18"}, headers={"Range": "bytes=10-19"}
    )
    assert video.path is not None
    assert r.status_code == 206 and r.content == video.path.read_bytes()[10:20]


def test_a_probed_info_dict_is_reused_to_fetch_captions(site: DemoSite, tmp_path: Path) -> None:
    video = next(v for v in site.world.usable if v.captions == "manual+auto")
    opts = {**QUIET, "skip_download": True, "writesubtitles": True, "writeautomaticsub": True,
            "subtitlesformat": "vtt", "subtitleslangs": ["en", "en-orig"], "outtmpl": str(tmp_path / "%(id)s.%(ext)s")}  # fmt: skip
    with demo_ydl(opts) as ydl:
        info = ydl.extract_info(f"{site.url}/watch?v={video.id}", download=False, process=False)
        before = len(site.requests)
        ydl.process_ie_result(info, download=True)
    fetched = list(site.requests)[before:]
    assert fetched and all(r.startswith("GET /api/timedtext?") for r in fetched)  # no second watch page
    assert (tmp_path / f"{video.id}.en.vtt").read_text() == video.caption_vtt(
        asr=False, lang="en", tlang=None
    )
    assert (tmp_path / f"{video.id}.en-orig.vtt").exists()


def test_unknown_id_is_video_unavailable_and_results_page_embeds_initial_data(site: DemoSite) -> None:
    with pytest.raises(DownloadError, match=r"\[demo\] AAAAAAAAAAA: Video unavailable"):
        with demo_ydl(QUIET) as ydl:
            ydl.extract_info(f"{site.url}/watch?v=AAAAAAAAAAA", download=False)
    page = httpx.get(f"{site.url}/results", params={"search_query": "how to paint a wall"}).text
    data = json.loads(page.split("var ytInitialData = ", 1)[1].split(";</script>", 1)[0])
    first = data["contents"][0]["videoRenderer"]
    assert site.world.video(first["videoId"]).task == "Paint a Wall"  # type: ignore[union-attr]
    assert data["continuation"]
