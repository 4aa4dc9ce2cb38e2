"""The one yt-dlp client: search, probe, caption and video downloads over one polite call loop.

Every request of the project to YouTube (or the demo site) goes through `YoutubeClient._call`: it waits
for the process-wide rate cap and circuit breaker, and sorts a failure once, the same way for every kind
of request. A 429 pauses the whole stage and is retried; a bot check, or 429s past the breaker's limit,
raise StageHalted (the stage stops, finished work is kept); anything else is a VideoError whose kind says
permanent (a row status) or transient (retried next run).
"""

from __future__ import annotations

import copy
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from yt_dlp import YoutubeDL
from yt_dlp.utils import DownloadError, ExtractorError

from tasks.youtube.access import AccessSecrets, YoutubeAccess
from tasks.youtube.errors import BOT_CHECK_ADVICE, ErrorKind, StageHalted, classify, clean_message
from tasks.youtube.ids import check_video_id
from tasks.youtube.politeness import Politeness, shared_politeness
from tasks.youtube.sanitize import sanitize_info
from tasks.youtube.subtitles import has_track, subtitle_params
from tasks.youtube.video_download import DownloadSettings, check_disk, download_params, existing_download

log = logging.getLogger(__name__)

YdlFactory = Callable[[Mapping[str, Any]], Any]


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


def ydl_params(access: YoutubeAccess, secrets: AccessSecrets) -> dict[str, Any]:
    """The YoutubeDL params every request shares; the demo site's URL travels as a param of its own."""
    params: dict[str, Any] = {
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "skip_download": True,
        "logger": _QuietLogger(),
        "socket_timeout": access.socket_timeout_s,
        "retries": access.retries,
        "extractor_retries": access.extractor_retries,
        "sleep_interval_requests": access.politeness.sleep_requests_s or None,
        "cachedir": False,
    }
    # The only place a secret is unwrapped: yt-dlp needs the plain value.
    if secrets.cookiefile is not None:
        params["cookiefile"] = secrets.cookiefile.get_secret_value()
    if secrets.proxy is not None:
        params["proxy"] = secrets.proxy.get_secret_value()
    if access.site_url:
        from tasks.youtube import demo_extractors

        params[demo_extractors.PARAM_URL] = access.site_url.rstrip("/")
    return params


def build_ydl(params: Mapping[str, Any]) -> YoutubeDL:
    """A YoutubeDL with our demo extractors registered before the defaults (else Generic claims them)."""
    from tasks.youtube import demo_extractors

    ydl = YoutubeDL(dict(params), auto_init=False)
    return demo_extractors.register(ydl)  # ours first, then yt-dlp's defaults (YouTube included)


class YoutubeClient:
    """Search, probe, captions and videos, each request behind the shared rate cap and circuit breaker.

    One client per thread (see ThreadClients): YoutubeDL objects are not meant to be shared between
    threads. Close it to remove its caption folder.
    """

    def __init__(
        self,
        access: YoutubeAccess,
        secrets: AccessSecrets | None = None,
        politeness: Politeness | None = None,
        ydl_factory: YdlFactory = build_ydl,
    ) -> None:
        self.access = access
        self.politeness = politeness or shared_politeness(access.politeness)
        # Secrets are read here, in the task's thread, unless the caller read them already; the
        # params keep them only for the YoutubeDL objects this client makes.
        self._params = ydl_params(access, secrets if secrets is not None else access.secrets())
        self._factory = ydl_factory
        self._ydl = ydl_factory(self._params)
        self._captions_ydl: Any = None
        self._captions_dir: str | None = None
        self.requests = 0
        self.ytdlp_s = 0.0  # wall time spent inside yt-dlp calls
        self.waited_s = 0.0  # wall time spent waiting for politeness

    def close(self) -> None:
        if self._captions_dir is not None:
            shutil.rmtree(self._captions_dir, ignore_errors=True)
            self._captions_dir, self._captions_ydl = None, None

    def __enter__(self) -> YoutubeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def video_url(self, video_id: str) -> str:
        return self.access.video_url(video_id)

    def search(self, query: str, max_results: int, prefix: str = "ytsearch") -> list[dict[str, Any]]:
        """Flat search: ranked entries with id, title, duration, view_count and url (no captions)."""
        term = f"{prefix}{int(max_results)}:{query}"
        self._ydl.params["extract_flat"] = "in_playlist"
        result = self._call(lambda: self._ydl.extract_info(term, download=False, process=True))
        entries = list(result.get("entries") or []) if isinstance(result, Mapping) else []
        return [dict(e) for e in entries if isinstance(e, Mapping)]

    def probe(self, url: str) -> dict[str, Any]:
        """One full extraction of a video page, sanitized (no private keys, no cookies, trimmed tracks)."""
        self._ydl.params["extract_flat"] = False
        info = self._call(lambda: self._ydl.extract_info(url, download=False))
        if not isinstance(info, Mapping):
            raise VideoError(ErrorKind.TRANSIENT, f"no info returned for {url}")
        return sanitize_info(self._ydl.sanitize_info(dict(info), remove_private_keys=True))

    def captions(self, info: Mapping[str, Any], lang: str, kind: str) -> bytes:
        """The .vtt bytes of one track of a kept info dict, downloaded by yt-dlp itself
        (`process_ie_result`), so cookies, proxy and sleeps apply as to probes."""
        video_id = check_video_id(str(info.get("id") or ""))
        if kind not in ("manual", "auto"):
            raise ValueError(f"caption kind must be manual or auto, not {kind!r}")
        if not has_track(info, lang, kind):
            raise VideoError(
                ErrorKind.UNAVAILABLE, f"no {kind} caption track {lang!r} in the info of {video_id}"
            )
        if self._captions_ydl is None:
            self._captions_dir = tempfile.mkdtemp(prefix="howto-vtt-")
            sleep_s = self.access.politeness.sleep_subtitles_s
            self._captions_ydl = self._factory(
                {**self._params, **subtitle_params(self._captions_dir, sleep_s)}
            )
        ydl = self._captions_ydl
        # Only the chosen kind's flag is on: with both, yt-dlp would prefer a manual track of the same key.
        ydl.params.update(
            {
                "writesubtitles": kind == "manual",
                "writeautomaticsub": kind == "auto",
                "subtitleslangs": [lang],
            }
        )
        target = Path(str(self._captions_dir)) / f"{video_id}.{lang}.vtt"
        target.unlink(missing_ok=True)
        self._call(lambda: ydl.process_ie_result(copy.deepcopy(dict(info)), download=True))
        if not target.exists():
            raise VideoError(ErrorKind.TRANSIENT, f"yt-dlp wrote no {lang} {kind} captions for {video_id}")
        data = target.read_bytes()
        target.unlink()
        return data

    def video(self, video_id: str, url: str, settings: DownloadSettings) -> Path:
        """The local file of one video, downloaded (resumably) unless an earlier run finished it.

        Raises DiskSpaceLow when the guard trips, besides the errors of every request.
        """
        video_id = check_video_id(video_id)
        found = existing_download(settings.out_dir, video_id)
        if found is not None:
            return found
        check_disk(settings.out_dir, settings.min_free_gb)
        ydl = self._factory({**self._params, **download_params(settings, video_id)})
        with ydl:
            self._call(lambda: ydl.extract_info(url, download=True))
        found = existing_download(settings.out_dir, video_id)
        if found is None:
            raise VideoError(
                ErrorKind.TRANSIENT, f"{video_id}: yt-dlp finished but no video file was written"
            )
        log.debug("downloaded %s to %s", video_id, found)
        return found

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Run one yt-dlp call politely: 429s pause the stage and retry; a bot check stops it."""
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
