"""Rows of one imported shard: videos, captions, clips and frame_features from release entries (pure)."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from storage.schemas import get_schema
from tasks.captions.clips import without_stop_words
from tasks.captions.track import MAX_TIME_MS
from tasks.howto100m.release import VideoMeta

IMPORT_STATUS = "imported"  # videos rows: listed by the release, never probed by us
NO_CAPTIONS = "no_captions"  # the caption file has no entry for the video
EMPTY_CAPTIONS = "empty_captions"  # it has one, but every line is empty
CAPTION_SOURCES = ("caption.json", "raw_caption.json")


def watch_url(video_id: str) -> str:
    return f"https://www.youtube.com/watch?v={video_id}"


def caption_text(value: Any) -> str:
    """A caption line as text, the way the reference loader reads it: `str(value)`.

    caption.json holds a few non-string lines: numbers (a caption "2" read as a number upstream) and
    NaN. The reference tokenises `str(text)`, so NaN becomes the word "nan"; a JSON null stands for the
    same NaN (pandas writes NaN as null) and is read as "nan" too.
    """
    if isinstance(value, str):
        return value
    if value is None:
        return "nan"
    return str(value)


def to_ms(seconds: Any) -> int | None:
    """Seconds (float or int) to integer milliseconds, rounded to nearest; None when not a finite number, or
    one past MAX_TIME_MS either way (1e300 or 10**30 made a traceback: no int64 holds it)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    if isinstance(seconds, float) and not math.isfinite(seconds):
        return None
    return round(seconds * 1000) if abs(seconds) <= MAX_TIME_MS // 1000 else None


# Why a caption line was not imported (or was changed), in the order checked; README lists them.
LENGTH_MISMATCH = "length_mismatch"  # lines past the shortest of the start, end and text lists
MALFORMED_ENTRY = "malformed_entry"  # the entry is not {start, end, text} lists: none of its lines
EMPTY_TEXT = "empty_text"
BAD_TIME = "bad_time"  # a start or end that is not a finite number of seconds from 0 up
START_AFTER_END = "start_after_end"
NON_STRING_TEXT_KEPT = "non_string_text_kept"  # read as str(value), as the reference does
TEXT_REPAIRED = "unpaired_surrogate_replaced"  # a lone \ud800-\udfff escape, which no UTF-8 text can hold
_SURROGATE = re.compile("[\ud800-\udfff]")
EXAMPLES_KEPT = 5  # per reason and shard: where to look, not a second copy of the file
SKIPPED_EXAMPLES = "skipped_examples"  # the key of the examples in a shard marker's `extra`


@dataclass
class EntryClips:
    """One video's clips from its caption entry, with what was skipped and why (and where: `examples`)."""

    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def skip(self, reason: str, where: str, n: int = 1) -> None:
        self.skipped[reason] += n
        keep_examples(self.examples, reason, [where])


def keep_examples(examples: dict[str, list[str]], reason: str, where: list[str]) -> None:
    """Add `where` to the examples of `reason`, up to EXAMPLES_KEPT of them."""
    shown = examples.setdefault(reason, [])
    shown += where[: max(0, EXAMPLES_KEPT - len(shown))]


def _repaired(text: str) -> str | None:
    """`text` with each lone surrogate (a JSON escape such as \\ud83d cut from its pair) replaced by U+FFFD;
    None when it had none. Parquet holds UTF-8, which has no such character: pyarrow raised on it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # (json pairs a high and a low escape into one character: every surrogate left in a str is alone)
        return _SURROGATE.sub("\ufffd", text)
    return None


def entry_clips(entry: Any) -> EntryClips:
    """zip(start, end, text) of an entry: empty texts, lines without finite times from 0 and lines that start
    after they end are skipped, each counted with the line's position ([i]: item i, from 0, of the lists)."""
    out = EntryClips()
    if not isinstance(entry, Mapping):
        out.skip(MALFORMED_ENTRY, f"a {type(entry).__name__}, not {{start, end, text}}")
        return out
    starts, ends, texts = (entry.get(k) for k in ("start", "end", "text"))
    if not (isinstance(starts, list) and isinstance(ends, list) and isinstance(texts, list)):
        out.skip(MALFORMED_ENTRY, "start, end and text are not all lists")
        return out
    n = min(len(starts), len(ends), len(texts))
    if not len(starts) == len(ends) == len(texts):
        lengths = f"start, end and text hold {len(starts)}, {len(ends)} and {len(texts)} items"
        out.skip(LENGTH_MISMATCH, f"[{n}:]: {lengths}", max(len(starts), len(ends), len(texts)) - n)
        starts, ends, texts = starts[:n], ends[:n], texts[:n]
    # The common case (every time a finite float from 0, no line ending before it starts, every text a
    # non-blank string UTF-8 can hold) without a Python loop per line: str.strip refuses a non-string, and
    # numpy's rint rounds half to even like round().
    if _all_texts(texts) and all(type(v) is float for v in starts) and all(type(v) is float for v in ends):
        times = np.array([starts, ends], dtype=np.float64) * 1000
        # (a finite time past MAX_TIME_MS, cast to int64, came out as -2**63: the loop below skips it)
        if (times >= 0).all() and (times <= MAX_TIME_MS).all():
            rounded = np.rint(times).astype(np.int64)
            if (rounded[0] <= rounded[1]).all():
                out.starts, out.ends, out.texts = rounded[0].tolist(), rounded[1].tolist(), list(texts)
                return out
    for i, (start, end, value) in enumerate(zip(starts, ends, texts, strict=True)):
        text = caption_text(value)
        if not isinstance(value, str):
            out.skip(NON_STRING_TEXT_KEPT, f"[{i}]: {value!r}")
        if not text.strip():
            out.skip(EMPTY_TEXT, f"[{i}]")
            continue
        start_ms, end_ms = to_ms(start), to_ms(end)
        if start_ms is None or end_ms is None or start_ms < 0 or end_ms < 0:
            out.skip(BAD_TIME, f"[{i}]: start {start!r}, end {end!r}")
            continue
        if start_ms > end_ms:
            out.skip(START_AFTER_END, f"[{i}]: start {start!r}, end {end!r}")
            continue
        repaired = _repaired(text)
        if repaired is not None:
            out.skip(TEXT_REPAIRED, f"[{i}]")
            text = repaired
        out.starts.append(start_ms)
        out.ends.append(end_ms)
        out.texts.append(text)
    return out


def _all_texts(texts: list[Any]) -> bool:
    """Every text a string with a word in it, and none with a lone surrogate (UTF-8 has no such character)."""
    try:
        if not all(map(str.strip, texts)):
            return False
    except TypeError:  # a number or null among them
        return False
    return _repaired("".join(texts)) is None


class ShardRows:
    """Column lists for one shard's four datasets, filled a video at a time."""

    def __init__(self, crawl_id: str, source: str) -> None:
        if source not in CAPTION_SOURCES:
            raise ValueError(f"caption source must be one of {CAPTION_SOURCES}, got {source!r}")
        self.crawl_id, self.source = crawl_id, source
        self.videos: list[dict[str, Any]] = []
        self.captions: list[dict[str, Any]] = []
        self.clips: dict[str, list[Any]] = {name: [] for name in get_schema("clips").schema.names}
        self.skipped: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}  # reason -> "<video id>[i]: ..." (EXAMPLES_KEPT each)

    def add(
        self, video_id: str, meta: VideoMeta | None, task: str | None, category: str | None, entry: Any
    ) -> None:
        """One video: its `videos` row, its `captions` row and its clips (`entry` None: not in the file)."""
        self.videos.append(video_row(video_id, meta, task, self.crawl_id))
        clips = entry_clips(entry) if entry is not None else EntryClips()
        self.skipped.update(clips.skipped)
        for reason, where in clips.examples.items():
            keep_examples(
                self.examples,
                reason,
                [f"{video_id}{w}" if w[:1] == "[" else f"{video_id}: {w}" for w in where],
            )
        n = len(clips.texts)
        words = [len(t.split()) for t in clips.texts]
        columns: dict[str, list[Any]] = {
            "clip_id": [f"{video_id}_{i:04d}" for i in range(n)], "video_id": [video_id] * n,
            "task_id": [task] * n, "category": [category] * n, "idx": list(range(n)),
            "start_ms": clips.starts, "end_ms": clips.ends, "text": clips.texts,
            # caption.json already had its stop words removed; raw_caption.json kept them
            "text_no_stopwords": clips.texts if self.source == "caption.json"
            else [without_stop_words(t) for t in clips.texts],
            "n_words": words, "crawl_id": [self.crawl_id] * n,
        }  # fmt: skip
        for name, values in columns.items():
            self.clips[name].extend(values)
        n_words = sum(words)
        n_clips = len(clips.texts)
        reason = None if n_clips else (NO_CAPTIONS if entry is None else EMPTY_CAPTIONS)
        self.captions.append({
            "video_id": video_id, "task_id": task, "caption_lang": None, "caption_kind": None,
            "vtt_path": None, "n_segments": n_clips, "n_words": n_words, "dropped_tags": None,
            "n_clips": n_clips, "keep": n_clips > 0, "drop_reason": reason, "status": "ok", "error": None,
            "crawl_id": self.crawl_id,
        })  # fmt: skip

    def note(self, reason: str, where: str, n: int = 1) -> None:
        """Count `n` of `reason` and keep `where` among its first EXAMPLES_KEPT examples."""
        self.skipped[reason] += n
        keep_examples(self.examples, reason, [where])

    def tables(self) -> dict[str, pa.Table]:
        return {
            "videos": pa.Table.from_pylist(self.videos, schema=get_schema("videos").schema),
            "captions": pa.Table.from_pylist(self.captions, schema=get_schema("captions").schema),
            "clips": pa.table(self.clips, schema=get_schema("clips").schema),
        }


def video_row(video_id: str, meta: VideoMeta | None, task: str | None, crawl_id: str) -> dict[str, Any]:
    row: dict[str, Any] = {name: None for name in get_schema("videos").schema.names}
    row.update(
        video_id=video_id, task_id=task, rank=meta.rank if meta else None, url=watch_url(video_id),
        keep=True, status=IMPORT_STATUS, crawl_id=crawl_id,
    )  # fmt: skip
    return row


class FeatureRows:
    """`frame_features` columns: one row per stored vector, or one failed row per (video, model)."""

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {n: [] for n in get_schema("frame_features").schema.names}
        self.blocks: list[np.ndarray] = []

    def add(self, video_id: str, model: str, fps: float, rows: np.ndarray | None, error: str) -> None:
        if rows is None:
            self._append(video_id, model, [-1], [0], [0], "failed", error)
            self.blocks.append(np.zeros((1, 0), np.float16))
            return
        k = np.arange(len(rows))
        # Row k covers [k/fps, (k+1)/fps): 2D at whole seconds, 3D at multiples of 2/3 s.
        starts = [round(i * 1000 / fps) for i in k.tolist()]
        ends = [round((i + 1) * 1000 / fps) for i in k.tolist()]
        self._append(video_id, model, k.tolist(), starts, ends, "ok", None)
        self.blocks.append(rows)

    def _append(
        self, video_id: str, model: str, idx: list[int], starts: list[int], ends: list[int],
        status: str, error: str | None,
    ) -> None:  # fmt: skip
        n = len(idx)
        self.columns["video_id"] += [video_id] * n
        self.columns["model"] += [model] * n
        self.columns["idx"] += idx
        self.columns["t_start_ms"] += starts
        self.columns["t_end_ms"] += ends
        self.columns["random_weights"] += [False] * n
        self.columns["status"] += [status] * n
        self.columns["error"] += [error] * n

    def table(self) -> pa.Table:
        schema = get_schema("frame_features").schema
        lengths = np.array([b.shape[1] for b in self.blocks for _ in range(b.shape[0])], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        values = (
            np.concatenate([b.reshape(-1) for b in self.blocks]) if self.blocks else np.zeros(0, np.float16)
        )
        arrays = {n: pa.array(v, schema.field(n).type) for n, v in self.columns.items() if n != "vector"}
        arrays["vector"] = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, pa.float16()))
        return pa.Table.from_pydict({n: arrays[n] for n in schema.names}, schema=schema)
