"""Sort yt-dlp error messages into what to do about them (pure): back off, stop, record, or retry later."""

from __future__ import annotations

import enum
import re


class ErrorKind(enum.Enum):
    """What a failed request means for the crawl."""

    RATE_LIMITED = "rate_limited"  # HTTP 429: back off, the whole stage pauses
    BOT_CHECK = "bot_check"  # "Sign in to confirm you're not a bot": stop the stage with advice
    UNAVAILABLE = "unavailable"  # private, removed, terminated: a permanent row, never retried
    TRANSIENT = "transient"  # timeouts, 5xx, resets, anything unknown: an error row, retried next run
    BAD_COOKIES = "bad_cookies"  # a cookies file yt-dlp refuses: the stage stops before any request


# Checked in order: a bot check mentions "Sign in" like some unavailable messages do.
_PATTERNS: list[tuple[ErrorKind, re.Pattern[str]]] = [
    (ErrorKind.RATE_LIMITED, re.compile(r"HTTP Error 429|Too Many Requests", re.I)),
    (ErrorKind.BOT_CHECK, re.compile(r"confirm you.{1,3}re not a bot|Sign in to confirm you.{1,3}re", re.I)),
    (
        ErrorKind.UNAVAILABLE,
        re.compile(
            r"Private video|This video is private|Video unavailable|This video (?:has been|was) removed"
            r"|This video is no longer available|This video is not available|account associated with this video"
            r"|has been terminated|members-only|Join this channel|Sign in to confirm your age"
            r"|age-restricted|HTTP Error 404|HTTP Error 410|does not exist|copyright",
            re.I,
        ),
    ),
]

# Each remedy names its CLI option and, for `howto pipeline`, its config field or environment variable.
BOT_CHECK_ADVICE = (
    "YouTube asks to 'Sign in to confirm you're not a bot': the crawl stopped to protect the address. "
    "Wait before retrying, then lower the request rate (--rate; youtube.politeness.requests_per_s), pass "
    "a cookies file exported from a logged-in browser (--cookies FILE; $HOWTO_YTDLP_COOKIES), or route "
    "through another address (--proxy URL; $HOWTO_YTDLP_PROXY). Finished work is kept; a rerun resumes "
    "where this one stopped."
)
CIRCUIT_ADVICE = (
    "HTTP 429 (Too Many Requests) kept coming after every back-off: the crawl stopped. Wait an hour or "
    "more, lower the request rate (--rate; youtube.politeness.requests_per_s) and youtube.concurrency, or "
    "use a proxy (--proxy URL; $HOWTO_YTDLP_PROXY). Finished work is kept; a rerun resumes where this one "
    "stopped."
)


class StageHalted(RuntimeError):
    """The whole stage must stop now (bot check, or 429s past the circuit breaker's limit)."""

    def __init__(self, kind: ErrorKind, advice: str, last_error: str = "") -> None:
        super().__init__(advice if not last_error else f"{advice} (last error: {last_error})")
        self.kind = kind
        self.advice = advice


def classify(message: str) -> ErrorKind:
    """The kind of a yt-dlp error message; anything not recognised counts as transient."""
    for kind, pattern in _PATTERNS:
        if pattern.search(message):
            return kind
    return ErrorKind.TRANSIENT


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SECRET_QUERY = re.compile(r"([?&](?:signature|sig|key|pot|token|expire|ei|ip)=)[^&\s]+", re.I)
_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.I)
# http.cookiejar's errors about a cookies file quote its path and the offending line, cookie value and all.
_COOKIES_FILE = re.compile(
    r"(?:'[^']*' )?(does not look like a Netscape format cookies file|invalid Netscape format cookies file)\b.*",
    re.S,
)


def clean_message(message: str, limit: int = 500) -> str:
    """An error message fit for a row: no colour codes, no credentials or signed URL parts, bounded."""
    text = _ANSI.sub("", message).replace("ERROR: ", "").strip()
    text = _USERINFO.sub(r"\1***@", text)
    text = _SECRET_QUERY.sub(r"\1***", text)
    text = _COOKIES_FILE.sub(r"the cookies file: \1 (its path and lines not shown)", text)
    return text if len(text) <= limit else text[:limit] + "..."
