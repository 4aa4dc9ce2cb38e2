"""HowTo100M release layout: HowTo100M_v1.csv, task_ids.csv, caption.json, raw_caption.json, per-video .npy.

What `howto import howto100m` reads back into the same tables: caption.json carries the stop-word-free
text (as the release's does), raw_caption.json the text as said; times are seconds (ms / 1000).
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from pathlib import Path
from typing import IO, Any

import numpy as np

from storage.layout import DataRoot
from storage.shards import list_markers, read_shard
from tasks.exports.select import ExportFilter, Selection, task_lookup
from tasks.exports.staging import staged_export
from tasks.exports.target import check_target, write_marker
from tasks.train.pooling import features_by_video

FEATURE_DIRS = {"resnet152": "features_2d", "resnext101": "features_3d"}


class CaptionWriter:
    """Writes one JSON object member by member, so a multi-GB caption file never sits in memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(f".tmp-{path.name}")
        self.handle: IO[str] = open(self.tmp, "w", encoding="utf-8")
        self.handle.write("{")
        self.count = 0

    def add(self, video_id: str, starts: list[float], ends: list[float], texts: list[str]) -> None:
        entry = json.dumps({"start": starts, "end": ends, "text": texts}, ensure_ascii=False)
        self.handle.write(f"{', ' if self.count else ''}{json.dumps(video_id)}: {entry}")
        self.count += 1

    def close(self) -> None:
        self.handle.write("}")
        self.handle.close()
        os.replace(self.tmp, self.path)


def _task_release_id(task: dict[str, Any] | None, task_id: str | None) -> str:
    """The id task_ids.csv uses for a task: the release's own id when it came from there, else ours."""
    if task is None:
        return task_id or ""
    return str(task["source_id"] or task["task_id"])


def export_release(root: DataRoot, out: Path, filt: ExportFilter, *, features: bool = True) -> dict[str, Any]:
    """Write the selection in the release's layout; returns counts. Video order: shard, then video id."""
    # Never a user's folder; the export is built beside `out` and swapped in whole (see staging), so the
    # parent must be writable too.
    check_target(root, out, "howto100m", beside=True)
    # The selection first: an unknown --category or no clip at all is refused before the folder is made.
    selection = Selection(root, filt)
    selection.require_clips()
    tasks = task_lookup(root)
    counts: Counter[str] = Counter(dict.fromkeys(("videos", "clips", "tasks", "feature_files"), 0))
    if features:
        counts["videos_without_features"] = 0
    with staged_export(out, "howto100m") as staged:
        check_target(root, out, "howto100m")  # again under the lock: `recover` may have put one back
        staged.mkdir()
        write_marker(staged, "howto100m")
        exported = _write_captions(staged, selection, features, counts)
        videos = _write_v1(root, staged / "HowTo100M_v1.csv", selection, tasks, set(exported), counts)
        _write_task_ids(root, staged / "task_ids.csv", tasks, videos, filt.keep == "all", counts)
    return {"format": "howto100m", "path": str(out), **dict(counts), "held_back": selection.held_back(),
            "random_weight_videos": len(selection.random_weight_videos)}  # fmt: skip


def _write_captions(out: Path, selection: Selection, features: bool, counts: Counter[str]) -> list[str]:
    """caption.json, raw_caption.json and the videos' .npy files; returns the video ids written."""
    captions = CaptionWriter(out / "caption.json")
    raw = CaptionWriter(out / "raw_caption.json")
    exported: list[str] = []
    for part in selection.shards():
        rows = part.clips.select(["video_id", "start_ms", "end_ms", "text", "text_no_stopwords"]).to_pydict()
        feats = {}
        if features:
            table = selection.features(part.shard, set(rows["video_id"]))
            feats = features_by_video(table) if table is not None else {}
        start = 0
        while start < len(rows["video_id"]):
            vid = rows["video_id"][start]
            end = start
            while end < len(rows["video_id"]) and rows["video_id"][end] == vid:
                end += 1
            span = slice(start, end)
            seconds = [s / 1000 for s in rows["start_ms"][span]], [e / 1000 for e in rows["end_ms"][span]]
            no_stop = [
                n if n is not None else t
                for n, t in zip(rows["text_no_stopwords"][span], rows["text"][span], strict=True)
            ]
            captions.add(vid, *seconds, no_stop)
            raw.add(vid, *seconds, rows["text"][span])
            counts["clips"] += end - start
            if vid in feats:
                for model, folder in FEATURE_DIRS.items():
                    (out / folder).mkdir(exist_ok=True)
                    np.save(out / folder / f"{vid}.npy", np.asarray(feats[vid].rows[model], np.float16))
                counts["feature_files"] += 2
                selection.exported((vid,))
            elif features:  # a reader that np.loads every caption.json video's files stops at this one
                counts["videos_without_features"] += 1
            exported.append(vid)
            start = end
    captions.close()
    raw.close()
    counts["videos_with_captions"] = len(exported)
    return exported


def _write_v1(root: DataRoot, path: Path, selection: Selection, tasks: dict[str, dict[str, Any]],
              with_captions: set[str], counts: Counter[str]) -> list[str | None]:  # fmt: skip
    """One line per selected video (shard order); returns the task ids they reference."""
    used: list[str | None] = []
    written: set[str] = set()  # a re-crawl adds a row for a video it found gone: one line per video
    tmp = path.with_name(f".tmp-{path.name}")
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["video_id", "category_1", "category_2", "rank", "task_id"])
        for marker in list_markers(root, "videos"):
            table = read_shard(root, "videos", marker.shard)
            for row in table.select(["video_id", "task_id", "rank"]).to_pylist() if table is not None else []:
                vid = row["video_id"]
                if vid in written:
                    continue
                # a video reaches the csv if it has exported clips, or (keep="all") whatever it has
                if vid not in with_captions and not (
                    selection.filt.keep == "all" and selection.video_ok(vid)
                ):
                    continue
                task = tasks.get(row["task_id"]) if row["task_id"] else None
                path_ = (task or {}).get("category_path") or []
                cat1 = path_[-1] if path_ else ""
                cat2 = path_[-2] if len(path_) > 1 else ""
                if selection.filt.categories and cat1 not in selection.filt.categories:
                    continue
                rank = "" if row["rank"] is None else str(row["rank"])
                task_col = _task_release_id(task, row["task_id"]) if row["task_id"] else ""
                writer.writerow([vid, cat1, cat2, rank, task_col])
                used.append(row["task_id"])
                written.add(vid)
                counts["videos"] += 1
    os.replace(tmp, path)
    return used


def _write_task_ids(root: DataRoot, path: Path, tasks: dict[str, dict[str, Any]], used: list[str | None],
                    everything: bool, counts: Counter[str]) -> None:  # fmt: skip
    """`id<TAB>title` lines: every task row (keep="all") or the tasks the exported videos use."""
    lines: list[tuple[str, str]] = []
    if everything:
        for marker in list_markers(root, "tasks"):
            table = read_shard(root, "tasks", marker.shard)
            for row in (
                table.select(["task_id", "source_id", "title"]).to_pylist() if table is not None else []
            ):
                lines.append((str(row["source_id"] or row["task_id"]), row["title"] or ""))
    else:
        for task_id in dict.fromkeys(t for t in used if t):
            task = tasks.get(task_id)
            if task is not None:
                lines.append((_task_release_id(task, task_id), task["title"] or ""))
    tmp = path.with_name(f".tmp-{path.name}")
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        for source_id, title in lines:
            if not title or any(c in title for c in "\t\n\r") or "\t" in source_id:
                counts["task_lines_unwritable"] += 1  # the format has no quoting for these
                continue
            handle.write(f"{source_id}\t{title}\n")
            counts["tasks"] += 1
    os.replace(tmp, path)
