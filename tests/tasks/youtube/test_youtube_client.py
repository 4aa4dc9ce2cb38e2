"""The client's one call loop and sanitizing, with yt-dlp's real error types and a scripted extractor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from youtube_fakes import FAST, client

from tasks.youtube.access import AccessSecrets, YoutubeAccess
from tasks.youtube.client import VideoError, ydl_params
from tasks.youtube.errors import ErrorKind, StageHalted
from tasks.youtube.politeness import PolitenessSettings
from tasks.youtube.video_download import DownloadSettings

URL = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
INFO = {
    "id": "dQw4w9WgXcQ",
    "title": "t",
    "duration": 60,
    "view_count": 500,
    "subtitles": {},
    "automatic_captions": {"en-orig": [{"url": "u"}], "fr": [{"url": "u&tlang=fr"}]},
    "formats": [
        {
            "format_id": "18",
            "url": "https://v/18",
            "cookies": "SID=secret; Path=/",
            "http_headers": {"Cookie": "SID=secret", "User-Agent": "x"},
        }
    ],
    "__post_extractor": None,
    "requested_subtitles": None,
}


def test_probe_retries_after_429_and_returns_sanitized_info() -> None:
    c, ydl = client({URL: ["[youtube] x: HTTP Error 429: Too Many Requests"] * 2 + [dict(INFO)]})
    info = c.probe(URL)
    assert len(ydl.calls) == 3 and c.politeness.breaker.trips == 2 and c.politeness.breaker.consecutive == 0
    text = json.dumps(info)
    assert "secret" not in text and "__post_extractor" not in info
    assert set(info["automatic_captions"]) == {"en-orig"}  # translations into other languages are dropped
    assert info["formats"][0]["http_headers"] == {"User-Agent": "x"}


def test_too_many_429s_halt_the_stage() -> None:
    c, ydl = client({URL: ["HTTP Error 429: Too Many Requests"] * 10})
    with pytest.raises(StageHalted) as info:
        c.probe(URL)
    assert info.value.kind is ErrorKind.RATE_LIMITED and len(ydl.calls) == FAST.max_backoffs + 1


def test_bot_check_stops_at_once_with_advice() -> None:
    c, ydl = client({URL: ["[youtube] x: Sign in to confirm you\u2019re not a bot. Use --cookies"]})
    with pytest.raises(StageHalted) as info:
        c.probe(URL)
    assert info.value.kind is ErrorKind.BOT_CHECK and len(ydl.calls) == 1
    assert "--cookies" in info.value.advice and "--proxy" in info.value.advice


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("[youtube] x: Private video. Sign in if you've been granted access", ErrorKind.UNAVAILABLE),
        ("[youtube] x: Unable to download webpage: The read operation timed out", ErrorKind.TRANSIENT),
    ],
)
def test_per_video_errors_become_video_errors(message: str, kind: ErrorKind) -> None:
    c, _ = client({URL: [message]})
    with pytest.raises(VideoError) as info:
        c.probe(URL)
    assert info.value.kind is kind and "ERROR" not in str(info.value)


def test_search_is_flat_and_returns_entries() -> None:
    entries = [{"id": "dQw4w9WgXcQ", "title": "a", "url": URL}, {"id": "nVbIUDjzWY4", "title": "b"}]
    c, ydl = client({"ytsearch7:how to grill zucchini": [{"_type": "playlist", "entries": iter(entries)}]})
    assert c.search("how to grill zucchini", 7) == entries
    assert ydl.params["extract_flat"] == "in_playlist"


def test_params_pass_through_politeness_and_secrets() -> None:
    access = YoutubeAccess(
        socket_timeout_s=7,
        retries=4,
        extractor_retries=2,
        politeness=PolitenessSettings(sleep_requests_s=1.5),
    )
    secrets = AccessSecrets(SecretStr("/tmp/cookies.txt"), SecretStr("socks5://u:p@127.0.0.1:9050"))
    params = ydl_params(access, secrets)
    assert params["cookiefile"] == "/tmp/cookies.txt" and params["proxy"].startswith("socks5://")
    assert (
        params["sleep_interval_requests"],
        params["socket_timeout"],
        params["retries"],
        params["extractor_retries"],
    ) == (1.5, 7, 4, 2)
    assert "cookiefile" not in ydl_params(access, AccessSecrets()) and "p@127" not in repr(secrets)


def test_secrets_come_from_the_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOWTO_YTDLP_COOKIES", "/secure/cookies.txt")
    monkeypatch.setenv("HOWTO_YTDLP_PROXY", "http://u:p@127.0.0.1:3128")
    params = ydl_params(YoutubeAccess(), YoutubeAccess().secrets())
    assert params["cookiefile"] == "/secure/cookies.txt" and params["proxy"] == "http://u:p@127.0.0.1:3128"
    monkeypatch.setenv("OTHER_PROXY", "http://v:q@10.0.0.1:3128")
    assert ydl_params(
        YoutubeAccess(proxy="env:OTHER_PROXY"), YoutubeAccess(proxy="env:OTHER_PROXY").secrets()
    )["proxy"].startswith("http://v:q@")
    monkeypatch.delenv("HOWTO_YTDLP_COOKIES")
    assert YoutubeAccess().secrets().cookiefile is None  # unset: no cookies, as before


@pytest.mark.parametrize("value", ["http://user:pw@proxy:3128", "/home/me/cookies.txt", "env:", "vault:x"])
def test_access_holds_references_never_secrets(value: str) -> None:
    with pytest.raises(ValidationError) as info:
        YoutubeAccess(proxy=value)
    assert "env:NAME" in str(info.value)
    assert YoutubeAccess(proxy="block:yt-proxy").proxy == "block:yt-proxy"


def test_video_download_halts_on_a_bot_check_at_once(tmp_path: Path) -> None:
    c, ydl = client({URL: ["[youtube] x: Sign in to confirm you\u2019re not a bot. Use --cookies"]})
    with pytest.raises(StageHalted) as info:
        c.video("dQw4w9WgXcQ", URL, DownloadSettings(tmp_path, min_free_gb=0))
    assert info.value.kind is ErrorKind.BOT_CHECK and len(ydl.calls) == 1


def test_video_download_backs_off_on_429_then_halts(tmp_path: Path) -> None:
    c, ydl = client({URL: ["HTTP Error 429: Too Many Requests"] * 10})
    with pytest.raises(StageHalted) as info:
        c.video("dQw4w9WgXcQ", URL, DownloadSettings(tmp_path, min_free_gb=0))
    assert info.value.kind is ErrorKind.RATE_LIMITED and len(ydl.calls) == FAST.max_backoffs + 1


def test_video_download_unavailable_is_a_permanent_video_error(tmp_path: Path) -> None:
    c, _ = client({URL: ["[youtube] x: Video unavailable. This video has been removed by the uploader"]})
    with pytest.raises(VideoError) as info:
        c.video("dQw4w9WgXcQ", URL, DownloadSettings(tmp_path, min_free_gb=0))
    assert info.value.kind is ErrorKind.UNAVAILABLE


def test_video_url_refuses_bad_ids() -> None:
    c, _ = client({})
    assert c.video_url("dQw4w9WgXcQ") == URL
    with pytest.raises(ValueError):
        c.video_url("../../x")


def test_build_ydl_puts_demo_extractors_before_the_defaults() -> None:
    from tasks.youtube.client import build_ydl

    ydl = build_ydl(ydl_params(YoutubeAccess(site_url="http://127.0.0.1:9/"), AccessSecrets()))
    names = list(ydl._ies)
    assert names[:2] == ["DemoVideo", "DemoSearch"] and "YoutubeSearch" in names and "Generic" in names
    assert ydl.params["howto_demo_url"] == "http://127.0.0.1:9"
