"""Caption-only download options and the track check (pure): YoutubeClient.captions uses them.

Captions are downloaded by yt-dlp itself (`process_ie_result` on the probe's kept info dict,
`skip_download`), so cookies, proxy, sleeps and our demo extractors apply to caption requests exactly as
to probes; caption URLs are never fetched with a bare HTTP call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tasks.youtube.stream_cap import stream_cap_hook

# Real tracks are tens to hundreds of KB; a hostile or broken server's could be gigabytes. yt-dlp refuses a
# file whose Content-Length is past `max_filesize` unread; a body it cannot size first (no Content-Length,
# or a compressed one) our progress hook stops once past the cap (tasks/youtube/stream_cap.py).
MAX_VTT_BYTES = 50_000_000


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
        "max_filesize": MAX_VTT_BYTES,
        "progress_hooks": [stream_cap_hook(MAX_VTT_BYTES)],
    }


def has_track(info: Mapping[str, Any], lang: str, kind: str) -> bool:
    """True when the info dict offers `lang` among its manual (`subtitles`) or automatic tracks."""
    tracks = info.get("subtitles" if kind == "manual" else "automatic_captions") or {}
    return isinstance(tracks, Mapping) and bool(tracks.get(lang))
