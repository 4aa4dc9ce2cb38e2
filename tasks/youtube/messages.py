"""What yt-dlp said, sorted into a few classes with what to do about each (pure): counted per stage and
shown, with the advice, in the stage's summary and Prefect artifact."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from tasks.youtube.video_download import TOO_LARGE

BOT_CHECK = "bot_check"
RATE_LIMITED = "rate_limited"
JS_CHALLENGE = "js_challenge"
PO_TOKEN = "po_token"
FORMATS_MISSING = "formats_missing"
FORBIDDEN = "http_403"
LOGIN_REQUIRED = "login_required"
UNAVAILABLE = "unavailable"
SERVER_ERROR = "server_error"
NETWORK = "network"
OTHER = "other"

YTDLP_KEY = "ytdlp"  # where a shard manifest and a stage summary carry the counts

# Checked in order, first match wins: a bot check says "Sign in" as a login wall does, a failed
# challenge says "some formats may be missing" as a plain missing format does.
_PATTERNS: list[tuple[str, str]] = [
    (BOT_CHECK, r"confirm you.{1,3}re not a bot"),
    (RATE_LIMITED, r"HTTP Error 429|Too Many Requests"),
    (JS_CHALLENGE, r"JavaScript runtime|JS runtime|challenge solv|n challenge|nsig|Signature (?:solving|extraction)"
                   r"|Remote components? .* skipped"),
    (PO_TOKEN, r"PO Token|po_token"),
    (FORMATS_MISSING, r"Requested format is not available|Only images are available|formats? may be missing"
                      r"|No video formats found"),
    (FORBIDDEN, r"HTTP Error 403|403: Forbidden"),
    (LOGIN_REQUIRED, r"Sign in to confirm your age|age.restricted|members.only|Join this channel"),
    (UNAVAILABLE, r"Private video|Video unavailable|has been removed|has been terminated|no longer available"
                  r"|is not available|HTTP Error 404|HTTP Error 410|does not exist"),
    (TOO_LARGE, r"larger than max-filesize|too_large"),
    (SERVER_ERROR, r"HTTP Error 5\d\d"),
    (NETWORK, r"timed out|Connection (?:reset|refused|aborted)|Unable to download|IncompleteRead"
              r"|bytes read|Name or service not known|Temporary failure"),
]  # fmt: skip
_RULES = [(name, re.compile(pattern, re.I)) for name, pattern in _PATTERNS]  # yt-dlp's wording varies in case

ADVICE: dict[str, str] = {
    BOT_CHECK: "YouTube wants a signed-in session: pass cookies exported from a logged-in browser "
    "(youtube.cookies / --cookies FILE, or youtube.cookies_from_browser), lower youtube.politeness."
    "requests_per_s, or use another address (youtube.proxy / youtube.source_address).",
    RATE_LIMITED: "Too many requests: slow down (youtube.politeness.requests_per_s, youtube.concurrency, "
    "one global limit for all workers with a Prefect server); the crawl already waits out Retry-After.",
    JS_CHALLENGE: "yt-dlp could not solve YouTube's JavaScript challenge: run `howto doctor`; install the "
    "project's deps (yt-dlp[default] brings yt-dlp-ejs, the deno package the runtime), or set "
    "youtube.js_runtime / youtube.js_runtime_path; update yt-dlp if the solver is out of date.",
    PO_TOKEN: "A player client needs a PO token: install the PO-token extra (pip install -e '.[potoken]') "
    "and run its provider, or pass a token by reference (youtube.po_token = env:NAME).",
    FORMATS_MISSING: "Formats are missing (usually a failed JS challenge or an old yt-dlp): run `howto "
    "doctor`, check the JS runtime, update yt-dlp; with cookies, a signed-in client may see more.",
    FORBIDDEN: "HTTP 403 on media: the stream URL was refused (JS challenge, PO token or an expired URL): "
    "run `howto doctor`, update yt-dlp, try youtube.extractor_args player clients or a PO token.",
    LOGIN_REQUIRED: "Age-restricted or members-only: only cookies of an account allowed to watch it help "
    "(youtube.cookies); otherwise the video stays a failed row.",
    UNAVAILABLE: "Private, removed or gone: recorded as a failed row, never retried.",
    TOO_LARGE: "Past the download size cap (features.max_download_mb): a failed row with drop reason too_large; "
    "a caption track past its 50 MB cap: an error row, retried on the next run.",
    SERVER_ERROR: "The site's servers failed (5xx): error rows, retried on the next run.",
    NETWORK: "Timeouts or broken connections: error rows, retried on the next run; check the proxy and "
    "youtube.socket_timeout_s if they persist.",
    OTHER: "Not recognised: read the message in the rows' error column or the logs (WARNING yt-dlp ...).",
}


def message_class(message: str) -> str:
    """The class of one yt-dlp warning or error message; OTHER when no rule matches."""
    for name, pattern in _RULES:
        if pattern.search(message):
            return name
    return OTHER


def count_key(level: str, message: str) -> str:
    """The key a message is counted under: `warning:js_challenge`, `error:unavailable`, ..."""
    return f"{level}:{message_class(message)}"


def merge_counts(counts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Add up several count dicts, keys sorted."""
    total: dict[str, int] = {}
    for c in counts:
        for key, n in c.items():
            total[key] = total.get(key, 0) + int(n)
    return dict(sorted(total.items()))


def advice_for(key: str) -> str:
    """The advice for a count key (`level:class`) or a bare class name."""
    return ADVICE.get(key.rpartition(":")[2], ADVICE[OTHER])
