"""Untrusted video ids and URLs from the web: validate ids, pull them out of URLs and import files."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

# YouTube ids are 11 characters of the URL-safe base64 alphabet; anything else (a path, a URL,
# 2 KB of text) is refused so that no id from the web ever becomes part of a file path.
VIDEO_ID_RE = re.compile(r"[A-Za-z0-9_-]{11}")
# Caption track keys are language tags ("en", "en-GB", "en-orig", "zh-Hans"); the captions stage makes one
# part of a .vtt file name, so the probe picks only keys of this shape and the stage refuses any other.
CAPTION_LANG_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_MAX_SHOWN = 80
# A host name with a dot, then a path: "youtu.be/ID", "m.youtube.com/watch?v=ID", "127.0.0.1:8000/watch?v=ID".
_BARE_HOST = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+(?::\d{1,5})?/")


class InvalidVideoId(ValueError):
    """A string that is not a plain 11-character video id."""


class ImportFileError(ValueError):
    """An import file the csv module cannot read (a field past its 128 KiB limit): the message names the line."""


def is_video_id(value: object) -> bool:
    """True for an 11-character `[A-Za-z0-9_-]` string and nothing else."""
    return isinstance(value, str) and VIDEO_ID_RE.fullmatch(value) is not None


def is_caption_lang(value: object) -> bool:
    """True for a plain caption language key (letters, digits, `_`, `-`; at most 32) and nothing else."""
    # fullmatch: `$` (and so `match` with it) lets a trailing newline through.
    return isinstance(value, str) and CAPTION_LANG_RE.fullmatch(value) is not None


def check_video_id(value: object) -> str:
    """Return `value` if it is a plain video id, else raise InvalidVideoId with a short excerpt."""
    if is_video_id(value):
        return str(value)
    raise InvalidVideoId(f"not a video id: {shorten(repr(value))}")


def shorten(text: str, limit: int = _MAX_SHOWN) -> str:
    """Cut untrusted text for error messages so a 2 KB title never floods a log or a row."""
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} chars)"


def id_from_url(text: str) -> str | None:
    """The video id in a watch/shorts/embed/live/youtu.be URL (with or without https://), a `.../<id>.mp4`
    URL, or a bare id."""
    text = text.strip()
    if is_video_id(text):
        return text
    if _BARE_HOST.match(text):
        # Pasted without its scheme ("youtu.be/ID", "www.youtube.com/watch?v=ID"), as address bars
        # and chat apps often copy it.
        text = f"https://{text}"
    parts = urlsplit(text)
    if not parts.scheme or not parts.netloc:
        return None
    query_id = parse_qs(parts.query).get("v", [None])[0]
    if query_id is not None:
        return query_id if is_video_id(query_id) else None
    last = parts.path.rstrip("/").rsplit("/", 1)[-1]
    stem = last.rsplit(".", 1)[0] if "." in last else last
    return stem if is_video_id(stem) else None


@dataclass(frozen=True)
class ImportedVideo:
    """One line of an import file: the id (None when the line is bad) and what else it said."""

    line_no: int
    raw: str
    video_id: str | None
    task_id: str | None = None
    rank: int | None = None
    error: str | None = None


HOWTO100M_HEADER = ("video_id", "category_1", "category_2", "rank", "task_id")


def parse_import_text(text: str) -> list[ImportedVideo]:
    """Parse ids/URLs one per line, or HowTo100M's `HowTo100M_v1.csv`; bad lines come back with `error`."""
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    if first.strip().lower().replace(" ", "").startswith("video_id,"):
        return _parse_csv(text)
    out = []
    for no, line in enumerate(lines, 1):
        raw = line.strip()
        if not raw or raw.startswith("#"):
            continue
        vid = id_from_url(raw)
        err = None if vid else f"line {no}: not a video id or video URL: {shorten(raw)}"
        out.append(ImportedVideo(no, shorten(raw), vid, error=err))
    return out


def _parse_csv(text: str) -> list[ImportedVideo]:
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip() for f in reader.fieldnames or []]
    reader.fieldnames = fields
    out = []
    try:
        for row in reader:
            no = reader.line_num
            raw = (row.get("video_id") or "").strip()
            vid = id_from_url(raw)
            rank_text = (row.get("rank") or "").strip()
            rank = int(rank_text) if rank_text.isdigit() else None
            task = (row.get("task_id") or "").strip() or None
            err = None if vid else f"line {no}: not a video id or video URL: {shorten(raw)}"
            out.append(ImportedVideo(no, shorten(raw), vid, task_id=task, rank=rank, error=err))
    except csv.Error as exc:
        raise ImportFileError(f"after line {reader.line_num}: {exc}") from None
    return out
