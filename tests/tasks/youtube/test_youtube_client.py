"""The client's politeness loop and sanitizing, with yt-dlp's real error types and a scripted extractor."""

from __future__ import annotations

import json

import pytest
from youtube_fakes import FAST, client

from tasks.youtube.client import ClientSettings, VideoError, ydl_params
from tasks.youtube.errors import ErrorKind, StageHalted
from tasks.youtube.politeness import PolitenessSettings

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
    settings = ClientSettings(
        cookiefile="/tmp/cookies.txt",
        proxy="socks5://u:p@127.0.0.1:9050",
        sleep_requests_s=1.5,
        socket_timeout_s=7,
        retries=4,
        extractor_retries=2,
        politeness=PolitenessSettings(),
    )
    params = ydl_params(settings)
    assert params["cookiefile"] == "/tmp/cookies.txt" and params["proxy"].startswith("socks5://")
    assert (
        params["sleep_interval_requests"],
        params["socket_timeout"],
        params["retries"],
        params["extractor_retries"],
    ) == (1.5, 7, 4, 2)
    assert "cookiefile" not in ydl_params(ClientSettings())


def test_secrets_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOWTO_YTDLP_COOKIES", "/secure/cookies.txt")
    monkeypatch.setenv("HOWTO_YTDLP_PROXY", "http://u:p@127.0.0.1:3128")
    params = ydl_params(ClientSettings())
    assert params["cookiefile"] == "/secure/cookies.txt" and params["proxy"] == "http://u:p@127.0.0.1:3128"


def test_video_url_refuses_bad_ids() -> None:
    c, _ = client({})
    assert c.video_url("dQw4w9WgXcQ") == URL
    with pytest.raises(ValueError):
        c.video_url("../../x")


def test_build_ydl_puts_demo_extractors_before_the_defaults() -> None:
    from tasks.youtube.client import build_ydl

    ydl = build_ydl(ClientSettings(demo_url="http://127.0.0.1:9/"))
    names = list(ydl._ies)
    assert names[:2] == ["DemoVideo", "DemoSearch"] and "YoutubeSearch" in names and "Generic" in names
    assert ydl.params["howto_demo_url"] == "http://127.0.0.1:9"
