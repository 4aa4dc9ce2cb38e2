"""Download a video's chosen caption track through yt-dlp itself, reusing the probe's kept info dict.

Going through yt-dlp (`process_ie_result` on the saved info, `skip_download`) means cookies, proxy,
sleeps and our demo extractors apply to caption requests exactly as to probes; caption URLs are never
fetched with a bare HTTP call.
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

from yt_dlp.utils import DownloadError, ExtractorError

from tasks.youtube.client import ClientSettings, VideoError, build_ydl
from tasks.youtube.errors import BOT_CHECK_ADVICE, ErrorKind, StageHalted, classify, clean_message
from tasks.youtube.ids import check_video_id
from tasks.youtube.politeness import Politeness, shared_politeness

log = logging.getLogger(__name__)


def subtitle_params(out_dir: str, sleep_subtitles_s: float = 0.0) -> dict[str, Any]:
    """The YoutubeDL options for caption-only work: write .vtt files under `out_dir`, no media."""
    return {
        "skip_download": True,
        "subtitlesformat": "vtt",
        "outtmpl": {"default": f"{out_dir}/%(id)s.%(ext)s"},
        # The kept info may list no playable formats (or the site may refuse them): captions still come.
        "ignore_no_formats_error": True,
        "sleep_interval_subtitles": sleep_subtitles_s or 0,
        "overwrites": True,
    }


def has_track(info: Mapping[str, Any], lang: str, kind: str) -> bool:
    """True when the info dict offers `lang` among its manual (`subtitles`) or automatic tracks."""
    tracks = info.get("subtitles" if kind == "manual" else "automatic_captions") or {}
    return isinstance(tracks, Mapping) and bool(tracks.get(lang))


class SubtitleDownloader:
    """One YoutubeDL (per thread) that writes caption tracks into a private temp folder."""

    def __init__(
        self,
        settings: ClientSettings,
        sleep_subtitles_s: float = 0.0,
        politeness: Politeness | None = None,
        ydl_factory: Callable[[ClientSettings, Mapping[str, Any]], Any] = build_ydl,
    ) -> None:
        self.politeness = politeness or shared_politeness(settings.politeness)
        self._dir = tempfile.mkdtemp(prefix="howto-vtt-")
        self._ydl = ydl_factory(settings, subtitle_params(self._dir, sleep_subtitles_s))
        self.requests = 0
        self.ytdlp_s = 0.0

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> SubtitleDownloader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def download(self, info: Mapping[str, Any], lang: str, kind: str) -> bytes:
        """The track's .vtt bytes; VideoError for a per-video failure, StageHalted for a bot check."""
        video_id = check_video_id(str(info.get("id") or ""))
        if kind not in ("manual", "auto"):
            raise ValueError(f"caption kind must be manual or auto, not {kind!r}")
        if not has_track(info, lang, kind):
            raise VideoError(
                ErrorKind.UNAVAILABLE, f"no {kind} caption track {lang!r} in the info of {video_id}"
            )
        # Only the chosen kind's flag is on: with both, yt-dlp would prefer a manual track of the same key.
        self._ydl.params.update(
            {
                "writesubtitles": kind == "manual",
                "writeautomaticsub": kind == "auto",
                "subtitleslangs": [lang],
            }
        )
        target = Path(self._dir) / f"{video_id}.{lang}.vtt"
        target.unlink(missing_ok=True)
        self._call(lambda: self._ydl.process_ie_result(copy.deepcopy(dict(info)), download=True))
        if not target.exists():
            raise VideoError(ErrorKind.TRANSIENT, f"yt-dlp wrote no {lang} {kind} captions for {video_id}")
        data = target.read_bytes()
        target.unlink()
        return data

    def _call(self, fn: Callable[[], Any]) -> Any:
        """One yt-dlp call behind the shared rate cap; 429s back off and retry, a bot check halts."""
        while True:
            self.politeness.before_request()
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
