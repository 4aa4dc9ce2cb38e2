"""What yt-dlp says: classes and advice for its real messages, the logger that shows and counts them."""

from __future__ import annotations

import email.utils
import logging

import pytest
from youtube_fakes import client

from tasks.youtube import messages
from tasks.youtube.ydl import YtdlpLog, retry_after_s

URL = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"


# Messages as yt-dlp 2026.10.26 words them (copied from its sources).
@pytest.mark.parametrize(
    ("message", "cls"),
    [
        (
            "[youtube] dQw4w9WgXcQ: Sign in to confirm you\u2019re not a bot. Use --cookies-from-browser or "
            "--cookies for the authentication.",
            messages.BOT_CHECK,
        ),
        ("[youtube] x: Unable to download webpage: HTTP Error 429: Too Many Requests", messages.RATE_LIMITED),
        (
            "No supported JavaScript runtime could be found. Only deno is enabled by default; to use another "
            "runtime add  --js-runtimes RUNTIME[:PATH]  to your command/config. YouTube extraction without a JS "
            "runtime has been deprecated, and some formats may be missing.",
            messages.JS_CHALLENGE,
        ),
        (
            "[youtube] x: n challenge solving failed: Some formats may be missing. Ensure you have a supported "
            "JavaScript runtime and challenge solver script distribution installed.",
            messages.JS_CHALLENGE,
        ),
        (
            "[youtube] x: Signature solving failed: Some formats may be missing.",
            messages.JS_CHALLENGE,
        ),
        (
            "[youtube] x: Unable to fetch GVS PO Token for mweb client: Missing required Visitor Data.",
            messages.PO_TOKEN,
        ),
        (
            "Requested format is not available. Use --list-formats for a list of available formats",
            "formats_missing",
        ),
        (
            "[youtube] x: Only images are available for download. use --list-formats to see them",
            "formats_missing",
        ),
        ("unable to download video data: HTTP Error 403: Forbidden", messages.FORBIDDEN),
        (
            "[youtube] x: Sign in to confirm your age. This video may be inappropriate",
            messages.LOGIN_REQUIRED,
        ),
        ("[youtube] x: Private video. Sign in if you've been granted access", messages.UNAVAILABLE),
        ("[youtube] x: Video unavailable. This video has been removed by the uploader", messages.UNAVAILABLE),
        ("[download] File is larger than max-filesize (9 bytes > 5 bytes). Aborting.", messages.TOO_LARGE),
        (
            "[youtube] x: Unable to download webpage: HTTP Error 503: Service Unavailable",
            messages.SERVER_ERROR,
        ),
        ("[youtube] x: Unable to download webpage: The read operation timed out", messages.NETWORK),
        ("Falling back to generic n function search", messages.OTHER),
    ],
)
def test_message_classes(message: str, cls: str) -> None:
    assert messages.message_class(message) == cls
    assert messages.advice_for(f"warning:{cls}") == messages.ADVICE[cls]


def test_advice_names_the_remedy_of_the_common_troubles() -> None:
    assert "cookies" in messages.ADVICE[messages.BOT_CHECK]
    assert "slow down" in messages.ADVICE[messages.RATE_LIMITED]
    for cls in (messages.JS_CHALLENGE, messages.FORMATS_MISSING, messages.FORBIDDEN):
        assert "howto doctor" in messages.ADVICE[cls] and "update yt-dlp" in messages.ADVICE[cls]
    assert messages.merge_counts([{"b": 1, "a": 2}, {"b": 3}]) == {"a": 2, "b": 4}


def test_the_logger_shows_warnings_at_warning_and_counts_them(caplog: pytest.LogCaptureFixture) -> None:
    log = YtdlpLog()
    with caplog.at_level(logging.DEBUG, logger="tasks.youtube.ydl"):
        log.warning("[youtube] x: n challenge solving failed: Some formats may be missing.")
        log.warning("Proxy http://user:hunter2@proxy:3128 https://r.googlevideo.com/v?signature=SECRET&x=1")
        log.debug("[youtube] x: Downloading webpage")
        log.error("ERROR: [youtube] x: Private video")
    levels = {r.getMessage(): r.levelno for r in caplog.records}
    assert (
        levels["yt-dlp: [youtube] x: n challenge solving failed: Some formats may be missing."]
        == logging.WARNING
    )
    assert levels["yt-dlp: [youtube] x: Downloading webpage"] == logging.DEBUG
    assert any(r.levelno == logging.WARNING and "Private video" in r.getMessage() for r in caplog.records)
    assert "hunter2" not in caplog.text and "SECRET" not in caplog.text
    assert log.counts == {"warning:js_challenge": 1, "warning:other": 1}  # errors are counted by the client


def test_the_client_counts_what_yt_dlp_said_per_class() -> None:
    c, _ = client(
        {
            URL: [
                "[youtube] x: Private video. Sign in",
                "HTTP Error 429: Too Many Requests",
                {"id": "dQw4w9WgXcQ"},
            ]
        }
    )
    c.log.warning("[youtube] x: Unable to fetch GVS PO Token for mweb client")
    with pytest.raises(Exception, match="Private video"):
        c.probe(URL)
    c.probe(URL)
    assert c.counts == {"error:rate_limited": 1, "error:unavailable": 1, "warning:po_token": 1}


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after_s("7") == 7.0
    when = email.utils.formatdate(1_000_030.0, usegmt=True)
    assert retry_after_s(when, now=1_000_000.0) == pytest.approx(30.0)
    assert retry_after_s(None) is None and retry_after_s("soon") is None
