"""Make a probed info dict safe and small to keep: no cookies, no credentials, English-only auto tracks."""

from __future__ import annotations

from typing import Any

from tasks.youtube.decision import is_english

# yt-dlp puts the cookies it sent into each format ("cookies") and sometimes into "http_headers".
_SECRET_KEYS = {"cookies", "cookie", "authorization", "proxy-authorization", "x-goog-visitor-id"}


def _strip(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {
            k: _strip(v) for k, v in obj.items() if not (isinstance(k, str) and k.lower() in _SECRET_KEYS)
        }
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def sanitize_info(info: dict[str, Any]) -> dict[str, Any]:
    """Drop secrets everywhere and keep only English and original-language auto caption tracks.

    YouTube offers ~150 machine translations per video; only these can ever be chosen, and dropping
    the rest shrinks a kept info file several times.
    """
    clean = _strip(info)
    auto = clean.get("automatic_captions")
    if isinstance(auto, dict):
        clean["automatic_captions"] = {
            k: v for k, v in auto.items() if isinstance(k, str) and (is_english(k) or k.endswith("-orig"))
        }
    return clean
