"""yt-dlp extractors for the local demo site: watch pages (DemoVideoIE) and search (demosearch).

The search extractor finds the site's base URL in the YoutubeDL param ``howto_demo_url`` or, failing
that, in the ``HOWTO_DEMO_URL`` environment variable. Watch URLs carry their own host, so probing and
downloading need neither. Register both with :func:`register` before yt-dlp's default extractors, or
the generic extractor claims the URLs first.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

from yt_dlp import YoutubeDL
from yt_dlp.extractor.common import InfoExtractor, SearchInfoExtractor
from yt_dlp.utils import ExtractorError, int_or_none, parse_count, parse_duration, traverse_obj

PARAM_URL = "howto_demo_url"
ENV_URL = "HOWTO_DEMO_URL"
_LOOPBACK = r"https?://(?:127\.0\.0\.1|localhost|\[::1\])(?::\d+)?"


def _text(obj: Any) -> str | None:
    """YouTube text objects: {simpleText} or {runs: [{text}]}."""
    if not isinstance(obj, dict):
        return None
    if "simpleText" in obj:
        return str(obj["simpleText"])
    runs = obj.get("runs")
    return "".join(str(r.get("text", "")) for r in runs) if isinstance(runs, list) else None


class DemoVideoIE(InfoExtractor):
    """A demo-site watch page -> a YouTube-shaped info dict (formats, subtitles, automatic_captions)."""

    IE_NAME = "demo"
    _VALID_URL = _LOOPBACK + r"/watch\?(?:[^#]*&)?v=(?P<id>[A-Za-z0-9_-]{11})"

    def _real_extract(self, url: str) -> dict[str, Any]:
        video_id = self._match_id(url)
        base = re.match(_LOOPBACK, url).group(0)  # type: ignore[union-attr]
        webpage = self._download_webpage(url, video_id)
        player = self._search_json(r"var\s+ytInitialPlayerResponse\s*=", webpage, "player response", video_id)
        self._raise_unplayable(player)
        details = player.get("videoDetails") or {}
        formats = []
        for f in traverse_obj(player, ("streamingData", "formats", ...)) or []:
            vcodec, acodec = re.search(r'codecs="([^,"]+),\s*([^"]+)"', f["mimeType"]).groups()  # type: ignore[union-attr]
            formats.append(
                {
                    "format_id": str(f["itag"]),
                    "url": urljoin(base, f["url"]),
                    "ext": "mp4",
                    "width": f.get("width"),
                    "height": f.get("height"),
                    "fps": f.get("fps"),
                    "vcodec": vcodec,
                    "acodec": acodec,
                    "filesize": int_or_none(f.get("contentLength")),
                    "asr": int_or_none(f.get("audioSampleRate")),
                    "audio_channels": f.get("audioChannels"),
                    "format_note": f.get("qualityLabel"),
                }
            )
        subtitles, automatic_captions = self._captions(player, base)
        upload = traverse_obj(player, ("microformat", "playerMicroformatRenderer", "uploadDate")) or ""
        return {
            "id": video_id,
            "title": details.get("title"),
            "description": details.get("shortDescription"),
            "duration": int_or_none(details.get("lengthSeconds")),
            "view_count": int_or_none(details.get("viewCount")),
            "channel": details.get("author"),
            "uploader": details.get("author"),
            "channel_id": details.get("channelId"),
            "upload_date": upload.replace("-", "")[:8] or None,
            "live_status": "not_live",
            "webpage_url": url,
            "formats": formats,
            "subtitles": subtitles,
            "automatic_captions": automatic_captions,
        }

    def _raise_unplayable(self, player: dict[str, Any]) -> None:
        """Word an unplayable video's error the way yt-dlp's YouTube extractor does."""
        status = player.get("playabilityStatus") or {}
        if status.get("status") == "OK":
            return
        pemr = traverse_obj(status, ("errorScreen", "playerErrorMessageRenderer")) or {}
        reason = _text(pemr.get("reason")) or status.get("reason") or "Video unavailable"
        subreason = _text(pemr.get("subreason"))
        if subreason and subreason != reason:
            reason += f". {subreason}"
        if "sign in" in reason.lower():
            reason = reason.removesuffix("This helps protect our community. Learn more").strip()
            reason = f"{reason.removesuffix('.')}. {self._login_hint(method='cookies')}"
        raise ExtractorError(reason, expected=True)

    def _captions(self, player: dict[str, Any], base: str) -> tuple[dict[str, list], dict[str, list]]:
        """Caption tracks -> (subtitles, automatic_captions), named as yt-dlp names YouTube's."""
        renderer = traverse_obj(player, ("captions", "playerCaptionsTracklistRenderer")) or {}
        translations = [t["languageCode"] for t in renderer.get("translationLanguages") or []]
        subs: dict[str, list] = {}
        autos: dict[str, list] = {}

        def add(container: dict[str, list], key: str, url: str, tlang: str | None = None) -> None:
            query = f"&fmt=vtt{f'&tlang={tlang}' if tlang else ''}"
            container.setdefault(key, []).append({"ext": "vtt", "url": urljoin(base, url) + query})

        for track in renderer.get("captionTracks") or []:
            lang = track["languageCode"]
            if track.get("kind") != "asr":
                add(subs, lang, track["baseUrl"])
                continue
            add(autos, f"{lang}-orig", track["baseUrl"])
            add(autos, lang, track["baseUrl"])  # tlang=<own language> damages the track: none
            for tl in translations:
                if tl != lang:
                    add(autos, tl, track["baseUrl"], tl)
        return subs, autos


class DemoSearchIE(SearchInfoExtractor):
    """demosearchN:<query> -> ranked flat entries (id, title, duration, view_count, url)."""

    IE_NAME = "demo:search"
    _SEARCH_KEY = "demosearch"

    def _search_results(self, query: str) -> Iterator[dict[str, Any]]:
        base = self.get_param(PARAM_URL) or os.environ.get(ENV_URL)
        if not base:
            raise ExtractorError(
                f"demosearch needs the demo site URL: set the YoutubeDL param {PARAM_URL!r} or ${ENV_URL}",
                expected=True,
            )
        base = base.rstrip("/")
        body: dict[str, Any] = {"query": query}
        for page in range(1, 10_000):
            data = self._download_json(
                f"{base}/youtubei/v1/search",
                query,
                note=f"Downloading search page {page}",
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
            )
            for item in data.get("contents") or []:
                r = item.get("videoRenderer") or {}
                if not r.get("videoId"):
                    continue
                yield self.url_result(
                    f"{base}/watch?v={r['videoId']}",
                    DemoVideoIE,
                    r["videoId"],
                    _text(r.get("title")),
                    duration=parse_duration(_text(r.get("lengthText"))),
                    view_count=parse_count(_text(r.get("viewCountText"))),
                    channel=_text(r.get("ownerText")),
                )
            if not data.get("continuation"):
                return
            body = {"continuation": data["continuation"]}


def register(ydl: YoutubeDL) -> YoutubeDL:
    """Add our extractors ahead of yt-dlp's defaults (make ydl with auto_init=False)."""
    ydl.add_info_extractor(DemoVideoIE())
    ydl.add_info_extractor(DemoSearchIE())
    ydl.add_default_info_extractors()
    return ydl


def demo_ydl(params: dict[str, Any] | None = None) -> YoutubeDL:
    """A YoutubeDL that knows the demo site (and still every real site yt-dlp supports)."""
    return register(YoutubeDL(params or {}, auto_init=False))
