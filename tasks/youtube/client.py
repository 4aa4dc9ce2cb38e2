"""The YouTube client: flat search and one-shot probe through yt-dlp, with politeness and error sorting."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from yt_dlp import YoutubeDL
from yt_dlp.utils import DownloadError, ExtractorError

from tasks.youtube.errors import BOT_CHECK_ADVICE, ErrorKind, StageHalted, classify, clean_message
from tasks.youtube.ids import check_video_id
from tasks.youtube.politeness import Politeness, PolitenessSettings, shared_politeness
from tasks.youtube.sanitize import sanitize_info

log = logging.getLogger(__name__)

DEMO_SEARCH_PREFIX = "demosearch"
COOKIES_ENV = "HOWTO_YTDLP_COOKIES"  # a Netscape cookies file
PROXY_ENV = "HOWTO_YTDLP_PROXY"


@dataclass(frozen=True)
class ClientSettings:
    """yt-dlp options we pass through; cookiefile and proxy are used but never logged or stored."""

    search_prefix: str = "ytsearch"
    demo_url: str | None = None
    cookiefile: str | None = None
    proxy: str | None = None
    socket_timeout_s: float = 20.0
    sleep_requests_s: float = 0.0  # yt-dlp's own sleep between the requests of one extraction
    retries: int = 3
    extractor_retries: int = 3
    politeness: PolitenessSettings = field(default_factory=PolitenessSettings)


class VideoError(Exception):
    """A per-video (or per-query) failure that becomes a row: `kind` says transient or permanent."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class _QuietLogger:
    """Routes yt-dlp's chatter to our debug log, with signed URLs and credentials masked."""

    def debug(self, msg: str) -> None:
        log.debug("yt-dlp: %s", clean_message(msg))

    info = debug

    def warning(self, msg: str) -> None:
        log.debug("yt-dlp warning: %s", clean_message(msg))

    def error(self, msg: str) -> None:
        log.debug("yt-dlp error: %s", clean_message(msg))


def ydl_params(settings: ClientSettings) -> dict[str, Any]:
    """The YoutubeDL params for metadata work; the demo site's URL travels as a param of its own."""
    params: dict[str, Any] = {
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "skip_download": True,
        "logger": _QuietLogger(),
        "socket_timeout": settings.socket_timeout_s,
        "retries": settings.retries,
        "extractor_retries": settings.extractor_retries,
        "sleep_interval_requests": settings.sleep_requests_s or None,
        "cachedir": False,
    }
    # From the environment when not configured: flow parameters are stored by Prefect, env vars are not.
    cookiefile = settings.cookiefile or os.environ.get(COOKIES_ENV)
    proxy = settings.proxy or os.environ.get(PROXY_ENV)
    if cookiefile:
        params["cookiefile"] = cookiefile
    if proxy:
        params["proxy"] = proxy
    if settings.demo_url:
        params.update(_demo_params(settings.demo_url))
    return params


def _demo_params(demo_url: str) -> dict[str, Any]:
    from tasks.youtube import demo_extractors

    return {demo_extractors.PARAM_URL: demo_url.rstrip("/")}


def build_ydl(settings: ClientSettings, extra: Mapping[str, Any] | None = None) -> YoutubeDL:
    """A YoutubeDL with our demo extractors registered before the defaults (else Generic claims them)."""
    from tasks.youtube import demo_extractors

    ydl = YoutubeDL({**ydl_params(settings), **(extra or {})}, auto_init=False)
    return demo_extractors.register(ydl)  # ours first, then yt-dlp's defaults (YouTube included)


class YoutubeClient:
    """Search and probe, each request behind the shared rate cap and circuit breaker.

    One client per thread: YoutubeDL objects are not meant to be shared between threads.
    """

    def __init__(
        self,
        settings: ClientSettings,
        politeness: Politeness | None = None,
        ydl_factory: Callable[[ClientSettings], Any] = build_ydl,
    ) -> None:
        self.settings = settings
        self.politeness = politeness or shared_politeness(settings.politeness)
        self._ydl = ydl_factory(settings)
        self.requests = 0
        self.ytdlp_s = 0.0  # wall time spent inside yt-dlp calls
        self.waited_s = 0.0  # wall time spent waiting for politeness

    def video_url(self, video_id: str) -> str:
        """The page URL of a video id, on YouTube or on the demo site."""
        video_id = check_video_id(video_id)
        if self.settings.demo_url:
            return f"{self.settings.demo_url.rstrip('/')}/watch?v={video_id}"
        return f"https://www.youtube.com/watch?v={video_id}"

    def search(self, query: str, max_results: int) -> list[dict[str, Any]]:
        """Flat search: ranked entries with id, title, duration, view_count and url (no captions)."""
        term = f"{self.settings.search_prefix}{int(max_results)}:{query}"
        result = self._call(lambda: self._ydl.extract_info(term, download=False, process=True), flat=True)
        entries = list(result.get("entries") or []) if isinstance(result, Mapping) else []
        return [dict(e) for e in entries if isinstance(e, Mapping)]

    def probe(self, url: str) -> dict[str, Any]:
        """One full extraction of a video page, sanitized (no private keys, no cookies, trimmed tracks)."""
        info = self._call(lambda: self._ydl.extract_info(url, download=False), flat=False)
        if not isinstance(info, Mapping):
            raise VideoError(ErrorKind.TRANSIENT, f"no info returned for {url}")
        return sanitize_info(self._ydl.sanitize_info(dict(info), remove_private_keys=True))

    def _call(self, fn: Callable[[], Any], *, flat: bool) -> Any:
        """Run one yt-dlp call politely: 429s pause the stage and retry; a bot check stops it."""
        self._ydl.params["extract_flat"] = "in_playlist" if flat else False
        while True:
            self.waited_s += self.politeness.before_request()
            started = time.perf_counter()
            try:
                self.requests += 1
                result = fn()
            except (DownloadError, ExtractorError) as exc:
                message = clean_message(str(exc))
                kind = classify(message)
                if kind is ErrorKind.RATE_LIMITED:
                    self.politeness.breaker.record_rate_limited(message)  # raises past the limit
                    continue
                if kind is ErrorKind.BOT_CHECK:
                    raise StageHalted(kind, BOT_CHECK_ADVICE, message) from None
                raise VideoError(kind, message) from None
            finally:
                self.ytdlp_s += time.perf_counter() - started
            self.politeness.breaker.record_success()
            return result
