"""The YouTube side of the demo site: watch pages with a player response, innertube-style search."""

from __future__ import annotations

import base64
import json
import re
from html import escape
from typing import Any
from urllib.parse import urlencode

from tasks.demo.troubles import Reported
from tasks.demo.videos import DemoVideo
from tasks.demo.visuals import FPS, HEIGHT, WIDTH

PAGE_SIZE = 20  # YouTube returns about 20 results per search page
BOT_REASON = "Sign in to confirm you\u2019re not a bot"  # YouTube's text, curly apostrophe and all
_STOP = {"how", "to", "a", "an", "the", "in", "of", "and", "for", "with", "your", "my", "like", "on", "do"}
_LANG_NAMES = {"en": "English", "es": "Spanish"}


def _tokens(text: str) -> set[str]:
    return {t for t in re.findall(r"[a-z0-9áéíóúñ]+", text.lower()) if t not in _STOP}


def search(videos: list[DemoVideo], query: str) -> list[DemoVideo]:
    """Rank every video for a query: share of query words in its title or tags, then views.

    Like YouTube, the list does not stop at the relevant hits: unrelated videos follow, so a search
    for 200 results pages through everything and the pipeline must cope with off-topic entries.
    """
    q = _tokens(query)
    scored = []
    for v in videos:
        doc = _tokens(v.title) | _tokens(v.task)  # the task title stands in for YouTube's tags
        score = len(q & doc) / len(q) if q else 0.0
        scored.append((-score, -v.view_count, v.id, v))
    return [s[-1] for s in sorted(scored)]


def duration_text(seconds: int) -> str:
    """YouTube's lengthText: 0:38, 40:17, 1:02:03."""
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def video_renderer(v: DemoVideo, rep: Reported) -> dict[str, Any]:
    """One search hit in YouTube's videoRenderer shape."""
    return {
        "videoRenderer": {
            "videoId": v.id,
            "title": {"runs": [{"text": v.title}]},
            "lengthText": {"simpleText": duration_text(rep.duration_s)},
            "viewCountText": {"simpleText": f"{rep.view_count:,} views"},
            "ownerText": {"runs": [{"text": v.channel}]},
            "publishedTimeText": {"simpleText": f"{v.upload_date[:4]}"},
        }
    }


def _token(query: str, offset: int) -> str:
    raw = json.dumps({"q": query, "o": offset}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def parse_token(token: str) -> tuple[str, int]:
    """Decode a continuation token into (query, offset); ValueError if it is not one of ours."""
    data = json.loads(base64.urlsafe_b64decode(token.encode()))
    return str(data["q"]), int(data["o"])


def search_page(hits: list[tuple[DemoVideo, Reported]], query: str, offset: int) -> dict[str, Any]:
    """One page of results plus a continuation token while more remain."""
    page = hits[offset : offset + PAGE_SIZE]
    out: dict[str, Any] = {"contents": [video_renderer(v, r) for v, r in page]}
    if offset + PAGE_SIZE < len(hits):
        out["continuation"] = _token(query, offset + PAGE_SIZE)
    return out


def playability_status(rep: Reported, bot_check: bool) -> dict[str, Any]:
    """playabilityStatus as YouTube words it."""
    if bot_check:
        reason, sub, status = BOT_REASON, "This helps protect our community. Learn more", "LOGIN_REQUIRED"
    elif rep.status == "private":
        reason, sub, status = (
            "Private video",
            "Sign in if you've been granted access to this video",
            "LOGIN_REQUIRED",
        )
    elif rep.status == "removed":
        reason, sub, status = "Video unavailable", "This video has been removed by the uploader", "ERROR"
    else:
        return {"status": "OK", "playableInEmbed": True}
    return {
        "status": status,
        "reason": reason,
        "errorScreen": {
            "playerErrorMessageRenderer": {"reason": {"simpleText": reason}, "subreason": {"simpleText": sub}}
        },
    }


def _caption_tracks(v: DemoVideo) -> dict[str, Any]:
    tracks = []
    subs, autos = v.tracks()
    for t in subs + [a for a in autos if a.key == f"{a.lang}-orig"]:
        query = {"v": v.id, "lang": t.lang, **({"kind": "asr"} if t.asr else {})}
        name = _LANG_NAMES[t.lang] + (" (auto-generated)" if t.asr else "")
        tracks.append(
            {
                "baseUrl": "/api/timedtext?" + urlencode(query),
                "name": {"simpleText": name},
                "vssId": ("a." if t.asr else ".") + t.lang,
                "languageCode": t.lang,
                **({"kind": "asr"} if t.asr else {}),
                "isTranslatable": True,
            }
        )
    langs = ["en"] + ([v.language] if v.language != "en" else [])
    translations = [{"languageCode": c, "languageName": {"simpleText": _LANG_NAMES[c]}} for c in langs]
    return {
        "playerCaptionsTracklistRenderer": {"captionTracks": tracks, "translationLanguages": translations}
    }


def player_response(v: DemoVideo, rep: Reported, size: int | None, bot_check: bool) -> dict[str, Any]:
    """ytInitialPlayerResponse for a watch page."""
    out: dict[str, Any] = {"playabilityStatus": playability_status(rep, bot_check)}
    details = {
        "videoId": v.id,
        "title": v.title,
        "lengthSeconds": str(rep.duration_s),
        "channelId": "UC" + v.id * 2,
        "author": v.channel,
        "viewCount": str(rep.view_count),
        "shortDescription": f"{v.title}. Step by step.",
        "isPrivate": rep.status == "private",
        "isLiveContent": False,
    }
    if bot_check or rep.status != "ok":
        return out  # YouTube sends no details, formats or captions for an unplayable video
    out["videoDetails"] = details
    out["streamingData"] = {
        "formats": [
            {
                "itag": 18,
                "url": f"/videoplayback?v={v.id}&itag=18",
                "mimeType": 'video/mp4; codecs="avc1.42001E, mp4a.40.2"',
                "width": WIDTH,
                "height": HEIGHT,
                "fps": FPS,
                "qualityLabel": f"{HEIGHT}p",
                "contentLength": str(size or 0),
                "approxDurationMs": str(v.duration_ms),
                "audioSampleRate": "22050",
                "audioChannels": 1,
            }
        ]
    }
    if v.captions != "none":
        out["captions"] = _caption_tracks(v)
    d = v.upload_date
    out["microformat"] = {
        "playerMicroformatRenderer": {"uploadDate": f"{d[:4]}-{d[4:6]}-{d[6:]}", "category": "Howto & Style"}
    }
    return out


def watch_html(v: DemoVideo | None, response: dict[str, Any]) -> str:
    """A watch page: the player response in a script, as YouTube embeds it."""
    title = escape(v.title) if v is not None else "YouTube"
    blob = json.dumps(response, ensure_ascii=False).replace("</", "<\\/")
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title} - YouTube</title></head>'
        f"<body><script>var ytInitialPlayerResponse = {blob};</script></body></html>\n"
    )
