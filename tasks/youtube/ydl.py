"""The YoutubeDL objects of the one client: options from the access model, a logger that shows what
yt-dlp says (warnings at WARNING, counted by class), and an HTTP gate in front of every request."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any, Protocol

from yt_dlp import YoutubeDL
from yt_dlp.networking.exceptions import HTTPError

from tasks.ratelimit import retry_after_s
from tasks.youtube.access import AccessSecrets, YoutubeAccess, parse_browser_spec
from tasks.youtube.errors import clean_message
from tasks.youtube.jsruntime import js_runtimes_param
from tasks.youtube.messages import TOO_LARGE, count_key, message_class

log = logging.getLogger(__name__)

GATE_PARAM = "howto_http_gate"  # the client's HttpGate, carried in the params like the demo site's URL


class HttpGate(Protocol):
    """What the client does around each HTTP request yt-dlp makes."""

    def before_http(self, url: str) -> None: ...

    def rate_limited(self, message: str, retry_after_s: float | None) -> None: ...

    def http_ok(self) -> None: ...


class YtdlpLog:
    """yt-dlp's `logger`: warnings and errors at WARNING in our log (credentials and signed URL parts
    masked), counted as `warning:<class>`; everything else at DEBUG. Errors are counted where the
    client sorts them (one per failed call), not here."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.too_large: str | None = None  # the last "larger than max-filesize" abort, if any

    def debug(self, msg: str) -> None:
        text = clean_message(msg, limit=1000)
        if message_class(text) == TOO_LARGE:  # yt-dlp says it on the screen, then skips the file
            self.too_large = text.strip()
            self.counts[f"warning:{TOO_LARGE}"] += 1
        log.debug("yt-dlp: %s", text)

    info = debug

    def warning(self, msg: str) -> None:
        text = clean_message(msg, limit=1000).removeprefix("WARNING: ")
        self.counts[count_key("warning", text)] += 1
        log.warning("yt-dlp: %s", text)

    def error(self, msg: str) -> None:
        log.warning("yt-dlp error: %s", clean_message(msg, limit=1000))


class PoliteYoutubeDL(YoutubeDL):
    """Every HTTP request (pages, API calls, caption files, media) passes the gate: the shared rate cap
    and breaker before it, a 429 waited out (Retry-After, back-off, jitter) and sent again, so a 429 on
    a media or caption file never fails the video; past the breaker's limit the gate raises StageHalted."""

    def urlopen(self, req: Any) -> Any:
        gate: HttpGate | None = self.params.get(GATE_PARAM)
        if gate is None:
            return super().urlopen(req)
        url = req if isinstance(req, str) else str(getattr(req, "url", ""))
        while True:
            gate.before_http(url)
            try:
                response = super().urlopen(req)
            except HTTPError as exc:
                if exc.status != 429:
                    raise
                wait = retry_after_s(exc.response.headers.get("Retry-After"))
                exc.response.close()
                gate.rate_limited(clean_message(f"HTTP Error 429: Too Many Requests: {url}"), wait)
                continue
            gate.http_ok()
            return response


def ydl_params(
    access: YoutubeAccess, secrets: AccessSecrets, logger: YtdlpLog | None = None
) -> dict[str, Any]:
    """The YoutubeDL params every request shares; the demo site's URL travels as a param of its own."""
    params: dict[str, Any] = {
        "quiet": True,
        "noprogress": True,
        "skip_download": True,
        "logger": logger or YtdlpLog(),
        "socket_timeout": access.socket_timeout_s,
        "retries": access.retries,
        "extractor_retries": access.extractor_retries,
        "sleep_interval_requests": access.politeness.sleep_requests_s or None,
        "cachedir": False,
        "js_runtimes": js_runtimes_param(access.js_runtime, access.js_runtime_path),
    }
    extractor_args = {ie: {k: list(v) for k, v in args.items()} for ie, args in access.extractor_args.items()}
    if access.cookies_from_browser:
        params["cookiesfrombrowser"] = parse_browser_spec(access.cookies_from_browser)
    if access.impersonate:
        from yt_dlp.networking.impersonate import ImpersonateTarget

        params["impersonate"] = ImpersonateTarget.from_str(access.impersonate)
    if access.source_address:
        params["source_address"] = access.source_address
    # The only place a secret is unwrapped: yt-dlp needs the plain value.
    if secrets.cookiefile is not None:
        params["cookiefile"] = secrets.cookiefile.get_secret_value()
    if secrets.proxy is not None:
        params["proxy"] = secrets.proxy.get_secret_value()
    if secrets.po_token is not None:
        tokens = [t.strip() for t in secrets.po_token.get_secret_value().split(",") if t.strip()]
        extractor_args.setdefault("youtube", {})["po_token"] = tokens
    if extractor_args:
        params["extractor_args"] = extractor_args
    if access.site_url:
        from tasks.youtube import demo_extractors

        params[demo_extractors.PARAM_URL] = access.site_url.rstrip("/")
    return params


def build_ydl(params: Mapping[str, Any]) -> YoutubeDL:
    """A gated YoutubeDL with our demo extractors registered before the defaults (else Generic claims them)."""
    from tasks.youtube import demo_extractors

    ydl = PoliteYoutubeDL(dict(params), auto_init=False)
    return demo_extractors.register(ydl)  # ours first, then yt-dlp's defaults (YouTube included)


def can_merge() -> bool:
    """Whether yt-dlp can merge a video-only and an audio-only download into one file here: it needs an
    ffmpeg (on PATH; the params name no ffmpeg_location), which a host decoding through PyAV may lack."""
    from yt_dlp.postprocessor import FFmpegMergerPP

    merger = FFmpegMergerPP(None)
    return bool(merger.available and merger.can_merge())
