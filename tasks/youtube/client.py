"""The one yt-dlp client: search, probe, caption and video downloads over one polite call loop.

Every HTTP request of the project to YouTube (or the demo site) passes the client's gate (see
tasks/youtube/ydl.py): it waits for the shared rate cap and circuit breaker, and a 429 is waited out and
sent again, whatever the request was for (a page, an API call, a caption file, a media file). Every
yt-dlp call goes through `YoutubeClient._call`, which sorts a failure once, the same way for every kind
of request: a bot check, or 429s past the breaker's limit, raise StageHalted (the stage stops, finished
work is kept); anything else is a VideoError whose kind says permanent (a row status) or transient
(retried next run). What yt-dlp said is counted by class in `counts` for the stage's summary.
"""

from __future__ import annotations

import copy
import logging
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from yt_dlp.utils import DownloadError, ExtractorError

from tasks.interrupts import ItemInterrupted, interrupt_seen, refuse_after_stop, stop_name
from tasks.youtube.access import AccessSecrets, YoutubeAccess
from tasks.youtube.cookies_file import CookiesFileError, check_cookies_file
from tasks.youtube.errors import BOT_CHECK_ADVICE, ErrorKind, StageHalted, classify, clean_message
from tasks.youtube.ids import check_video_id
from tasks.youtube.merge_probe import mp4_merge_works
from tasks.youtube.messages import TOO_LARGE, count_key
from tasks.youtube.politeness import Politeness, shared_politeness
from tasks.youtube.sanitize import sanitize_info
from tasks.youtube.stream_cap import StreamCapExceeded
from tasks.youtube.subtitles import MAX_VTT_BYTES, has_track, subtitle_params
from tasks.youtube.video_download import (
    DownloadSettings,
    check_disk,
    download_params,
    existing_download,
    merge_container,
    one_file_format,
    selected_size,
)
from tasks.youtube.ydl import GATE_PARAM, YtdlpLog, build_ydl, can_merge, ydl_params

__all__ = ["MediaCapExceeded", "VideoError", "YoutubeClient", "build_ydl", "checked_secrets", "ydl_params"]

log = logging.getLogger(__name__)

YdlFactory = Callable[[Mapping[str, Any]], Any]


class VideoError(Exception):
    """A per-video (or per-query) failure that becomes a row: `kind` says transient or permanent."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class MediaCapExceeded(VideoError):
    """The media is past a cap (size or duration): a permanent failed row, `reason` its drop reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(ErrorKind.UNAVAILABLE, f"{reason}: {message}")
        self.reason = reason


def checked_secrets(access: YoutubeAccess) -> AccessSecrets:
    """The access's secrets, read now, with the cookies file checked as yt-dlp will read it: a file it
    refuses whole (no magic first line, a byte-order mark, a bad flag, JSON) failed every request of the
    stage, each one a row whose error quoted the offending line, cookie value and all; a file it may not
    read was skipped without a word. Either stops the stage here, before any request, naming only the
    reference."""
    secrets = access.secrets()
    if secrets.cookiefile is not None:
        try:
            check_cookies_file(secrets.cookiefile.get_secret_value())
        except CookiesFileError as exc:
            advice = (
                f"yt-dlp cannot use the cookies file youtube.cookies ({access.cookies}) names: {exc}. "
                "Fix or export it again (`howto doctor` checks it), or unset it to run without cookies; "
                "nothing was requested."
            )
            raise StageHalted(ErrorKind.BAD_COOKIES, advice) from None
    return secrets


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
        self.log = YtdlpLog()
        self.errors: Counter[str] = Counter()
        # Secrets are read here, in the task's thread, unless the caller read them already; the
        # params keep them only for the YoutubeDL objects this client makes.
        self._params = ydl_params(
            access, secrets if secrets is not None else checked_secrets(access), self.log
        )
        self._params[GATE_PARAM] = self
        self._factory = ydl_factory
        self._ydl = ydl_factory(self._params)
        self._captions_ydl: Any = None
        self._captions_dir: str | None = None
        self._download_ydl: Any = None
        self._download_key: tuple[Any, ...] | None = None
        self.requests = 0  # yt-dlp calls
        self.http_requests = 0  # HTTP requests those calls made (429s answered included)
        self.ytdlp_s = 0.0  # wall time spent inside yt-dlp calls
        self.waited_s = 0.0  # wall time spent waiting for politeness

    @property
    def counts(self) -> dict[str, int]:
        """What yt-dlp said, by `level:class`: its warnings, and the errors of failed requests and calls."""
        return dict(sorted((self.log.counts + self.errors).items()))

    # -- the HTTP gate (ydl.PoliteYoutubeDL calls these around every request) ----------------------

    def before_http(self, url: str) -> None:
        self.waited_s += self.politeness.before_request()
        self.http_requests += 1

    def rate_limited(self, message: str, retry_after_s: float | None) -> None:
        self.errors[count_key("error", message)] += 1
        self.politeness.breaker.record_rate_limited(message, retry_after_s)  # raises past the limit

    def http_ok(self) -> None:
        self.politeness.breaker.record_success()

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
        self.log.too_large = None
        cap = f"the {MAX_VTT_BYTES / 1e6:g} MB cap for a caption track"
        try:
            self._call(lambda: ydl.process_ie_result(copy.deepcopy(dict(info)), download=True))
        except StreamCapExceeded as exc:  # a body of untold size, stopped while streaming
            _remove_partial(exc)
            raise VideoError(
                ErrorKind.TRANSIENT,
                f"{lang} {kind} captions for {video_id}: stopped after {exc.read} bytes, past {cap}",
            ) from None
        if not target.exists():
            if self.log.too_large:  # refused on its Content-Length, unread
                raise VideoError(
                    ErrorKind.TRANSIENT,
                    f"{lang} {kind} captions for {video_id} past {cap}: {self.log.too_large}",
                )
            raise VideoError(ErrorKind.TRANSIENT, f"yt-dlp wrote no {lang} {kind} captions for {video_id}")
        size = target.stat().st_size
        if size > MAX_VTT_BYTES:  # never read into memory
            target.unlink()
            raise VideoError(
                ErrorKind.TRANSIENT, f"{lang} {kind} captions for {video_id}: {size} bytes, past {cap}"
            )
        data = target.read_bytes()
        target.unlink()
        return data

    def video(
        self, video_id: str, url: str, settings: DownloadSettings, info: Mapping[str, Any] | None = None
    ) -> Path:
        """The local file of one video, downloaded (resumably) unless an earlier run finished it.

        With a kept `info` (a fresh probe's) only the media is requested; without, the page is extracted
        first. The chosen format's size is checked against `settings.max_bytes` before any media request
        (yt-dlp's max_filesize stops one whose size only the server tells). Raises MediaCapExceeded past
        the cap and DiskSpaceLow when the guard trips, besides the errors of every request.
        """
        video_id = check_video_id(video_id)
        found = existing_download(settings.out_dir, video_id)
        if found is not None:
            return found
        check_disk(settings.out_dir, settings.min_free_gb)
        ydl = self._downloader(settings)
        ydl.params["outtmpl"] = {"default": str(settings.out_dir / f"{video_id}.%(ext)s")}
        # yt-dlp's own container pick first (the downloader is shared: not the previous video's), then ours.
        ydl.params["merge_output_format"] = None
        if info is None:
            info = self._call(lambda: ydl.extract_info(url, download=False, process=False))
            if not isinstance(info, Mapping):
                raise VideoError(ErrorKind.TRANSIENT, f"no info returned for {url}")
        kept = dict(info)
        chosen = self._call(lambda: ydl.process_ie_result(copy.deepcopy(kept), download=False))
        size = selected_size(chosen) if isinstance(chosen, Mapping) else None
        if settings.max_bytes is not None and size is not None and size > settings.max_bytes:
            self.errors[f"error:{TOO_LARGE}"] += 1
            raise MediaCapExceeded(TOO_LARGE, f"{size / 1e6:.1f} MB > cap {settings.max_bytes / 1e6:g} MB")
        container = merge_container(chosen) if isinstance(chosen, Mapping) else None
        if container == "mp4" and not mp4_merge_works():
            container = None  # an FFmpeg 3.x: yt-dlp's own Matroska, 21 ms late, rather than no download
        ydl.params["merge_output_format"] = container
        self.log.too_large = None
        try:
            self._call(lambda: ydl.process_ie_result(copy.deepcopy(kept), download=True))
        except StreamCapExceeded as exc:  # a body of untold size, stopped while streaming
            _remove_partial(exc)  # else the next run's resume would start from it
            self.errors[f"error:{TOO_LARGE}"] += 1
            raise MediaCapExceeded(
                TOO_LARGE, f"stopped after {exc.read / 1e6:.1f} MB > cap {exc.cap / 1e6:g} MB"
            ) from None
        found = existing_download(settings.out_dir, video_id)
        if found is None:
            if self.log.too_large:
                raise MediaCapExceeded(TOO_LARGE, self.log.too_large)
            raise VideoError(
                ErrorKind.TRANSIENT, f"{video_id}: yt-dlp finished but no video file was written"
            )
        log.debug("downloaded %s to %s", video_id, found)
        return found

    def _downloader(self, settings: DownloadSettings) -> Any:
        """One download YoutubeDL per client and settings (cookies are read once, not once per video)."""
        key = (settings.out_dir, settings.max_bytes, settings.format)
        if self._download_ydl is None or self._download_key != key:
            if one_file_format(settings.format) != settings.format and not can_merge():
                log.warning(
                    "yt-dlp finds no ffmpeg to merge video and audio downloads with: each video is downloaded "
                    "as one file, with its own audio where a small enough one has it, else without audio"
                )
                settings = replace(settings, format=one_file_format(settings.format))
            self._download_ydl = self._factory({**self._params, **download_params(settings)})
            self._download_key = key
        return self._download_ydl

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Run one yt-dlp call: 429s that reach here pause the stage and retry; a bot check stops it."""
        while True:
            self.waited_s += self.politeness.breaker.wait_if_open()
            # What the shard's items saved before a stop signal (info and .vtt files) is reused by the rerun.
            refuse_after_stop("no more requests")
            started = time.perf_counter()
            try:
                self.requests += 1
                result = fn()
            except (DownloadError, ExtractorError) as exc:
                message = clean_message(str(exc))
                if interrupt_seen():
                    # After a stop signal a failure is no verdict on the video: the signal to the process
                    # group also ended the ffmpeg that yt-dlp merges or fetches with. Not a row: the rerun
                    # asks again.
                    raise ItemInterrupted(f"yt-dlp after {stop_name()}: {message}") from None
                self.errors[count_key("error", message)] += 1
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


def _remove_partial(exc: StreamCapExceeded) -> None:
    """Delete the part file of a download stopped at its cap (yt-dlp leaves it for a resume)."""
    if exc.partial:
        Path(exc.partial).unlink(missing_ok=True)
