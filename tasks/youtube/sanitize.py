"""Make a probed info dict safe and small to keep: no secrets, English-only auto tracks, nothing hostile."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tasks.youtube.decision import implausible_number, is_english

# yt-dlp puts the cookies it sent into each format ("cookies") and sometimes into "http_headers".
_SECRET_KEYS = {"cookies", "cookie", "authorization", "proxy-authorization", "x-goog-visitor-id"}

# Real info dicts nest about 5 deep (formats -> http_headers); yt-dlp's own walk overflows some hundreds deep.
MAX_DEPTH = 32
# YouTube caps a description at 5,000 characters; signed URLs run to a few thousand.
MAX_TEXT_CHARS = 1_000_000
# A trimmed YouTube info dict is 0.1-0.5 MB: the whole dict (text, keys, one per other value) stays under this.
MAX_INFO_CHARS = 16_000_000
_INT64 = 2**63
_NAME_CHARS = 40  # keys from the site are cut to this in error messages
_PROBLEM_CHARS = 300  # and a whole message (a deep path) to this


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


def _name(key: str) -> str:
    return key if len(key) <= _NAME_CHARS else key[:_NAME_CHARS] + "..."


def _text_problem(text: str, where: str) -> str | None:
    if len(text) > MAX_TEXT_CHARS:
        return f"{where} is {len(text):,} characters (limit {MAX_TEXT_CHARS:,})"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return f"{where} is not valid Unicode text (a lone surrogate)"
    return None


def _value_problem(value: Any, where: str) -> str | None:
    """What is wrong with one JSON leaf (storage can take strict JSON, UTF-8 and int64 only), or None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return _text_problem(value, where)
    if isinstance(value, int):
        return None if -_INT64 <= value < _INT64 else f"{where} is an integer of {value.bit_length()} bits"
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where} is not a finite number ({value!r})"
    return f"{where} is a {type(value).__name__}, not a JSON value"


def info_problem(info: Mapping[str, Any]) -> str | None:
    """Why this info dict must be neither kept nor decided on, or None: the first problem met, with its place.

    A hostile or broken site can hand yt-dlp values that break us later: NaN and infinities (not JSON,
    and `int()` of them raises), integers past 64 bits (not Parquet), lone surrogates (not UTF-8),
    nesting that overflows a recursive walk, fields of many megabytes. The walk keeps its own stack so
    that no depth can overflow it; then the decision's fields must be numbers a real video can have.
    """
    problem = _walk(info) or implausible_number(info)
    if problem is not None and len(problem) > _PROBLEM_CHARS:
        return problem[: _PROBLEM_CHARS - 3] + "..."
    return problem


def _walk(info: Mapping[str, Any]) -> str | None:
    """The first structural problem, depth first with an explicit stack (any depth is safe to walk)."""
    budget = MAX_INFO_CHARS
    stack: list[tuple[Any, str, int]] = [(info, "", 0)]
    while stack:
        value, where, depth = stack.pop()
        if not isinstance(value, Mapping | list):
            problem = _value_problem(value, where)
            if problem is not None:
                return problem
            budget -= len(value) if isinstance(value, str) else 0
        elif depth >= MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels at {where}"
        else:
            pairs = value.items() if isinstance(value, Mapping) else enumerate(value)
            for key, item in pairs:
                if isinstance(value, list):
                    place = f"{where}[{key}]"
                elif not isinstance(key, str):
                    return f"a key of type {type(key).__name__} at {where or 'the top level'}"
                else:
                    place = f"{where}.{_name(key)}" if where else _name(key)
                    problem = _text_problem(key, f"a key at {place}")
                    if problem is not None:
                        return problem
                    budget -= len(key)
                budget -= 1  # every value counts, so a list of a million nulls is large too
                if budget < 0:
                    break
                stack.append((item, place, depth + 1))
        if budget < 0:
            return f"info is larger than {MAX_INFO_CHARS:,} characters (at {where or 'the top level'})"
    return None
