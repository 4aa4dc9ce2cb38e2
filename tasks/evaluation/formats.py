"""Readers of the benchmarks' official files; any problem is a BenchmarkFileError naming the file.

YouCook2: `youcookii_annotations_trainval.json` ({"database": {vid: {duration, subset, recipe_type,
annotations: [{segment: [s, e], id, sentence}], video_url}}}), or the HowTo100M release's
`youcook_val.pkl` (a list of {id, 2d, 3d, caption}). MSR-VTT: `MSRVTT_JSFUSION_test.csv` (key, vid_key,
video_id, sentence) and the release's `MSRVTT_JSFUSION_test.pth` ({'2d': {vid: tensor}, '3d': {...}}).
CrossTask: `tasks_primary.txt` (6-line task cards), `videos.csv` / `videos_val.csv` (task, vid, url) and
`annotations/<task>_<vid>.csv` (step, start, end).
"""

from __future__ import annotations

import csv
import io
import json
import math
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# The choices the CLI shows: CrossTask's splits (zero-shot protocol: test) and YouCook2's subsets.
CROSSTASK_SPLITS = ("test", "val", "all")
YOUCOOK2_SUBSETS = ("validation", "training")


class BenchmarkFileError(ValueError):
    """A benchmark file is missing, truncated or not in its official format (message names the file)."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


def _read_text(path: Path) -> str:
    """The file as text. A byte-order mark (Windows tools write one when they save UTF-8) is dropped:
    kept, it would glue itself to the first task id or video id, and that task would vanish unseen."""
    if not path.is_file():
        raise BenchmarkFileError(path, missing_file(path))
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BenchmarkFileError(path, f"not UTF-8 text (byte {exc.start})") from None


# --- YouCook2 -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """One annotated step of a video: its span in seconds and its sentence."""

    video_id: str
    start_s: float
    end_s: float
    sentence: str


def read_youcook2(path: Path, subset: str = "validation") -> list[Segment]:
    """Segments of the videos of one subset ("training" or "validation"), in file order."""
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise BenchmarkFileError(path, f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:  # arrays in arrays thousands deep: json's C decoder runs out of stack
        raise BenchmarkFileError(path, "not a youcookii_annotations file (JSON nested too deeply)") from None
    except ValueError as exc:  # an integer past Python's 4,300-digit conversion limit
        raise BenchmarkFileError(
            path, f"not a youcookii_annotations file ({str(exc).split(';')[0]})"
        ) from None
    database = data.get("database") if isinstance(data, dict) else None
    if not isinstance(database, dict):
        raise BenchmarkFileError(path, 'no "database" object: not a youcookii_annotations file')
    segments = []
    for vid, entry in database.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("annotations"), list):
            raise BenchmarkFileError(path, f'video {vid}: no "annotations" list')
        if "subset" not in entry:
            raise BenchmarkFileError(path, f'video {vid}: no "subset"')
        if entry["subset"] != subset:
            continue
        for i, ann in enumerate(entry["annotations"]):
            try:
                start, end = (float(x) for x in ann["segment"])
                sentence = str(ann["sentence"])
            except (KeyError, TypeError, ValueError):
                raise BenchmarkFileError(
                    path, f"video {vid}: annotation {i} lacks segment [s, e] or sentence"
                ) from None
            if not (math.isfinite(start) and math.isfinite(end)) or end < start:
                raise BenchmarkFileError(path, f"video {vid}: annotation {i} has segment [{start}, {end}]")
            segments.append(Segment(str(vid), start, end, sentence))
    return segments


@dataclass
class FeatureItems:
    """Pre-extracted benchmark items: ids, captions and the 2D and 3D vectors (rows aligned)."""

    ids: list[str]
    captions: list[str]
    feat_2d: np.ndarray
    feat_3d: np.ndarray


# A youcook_val.pkl holds plain containers and numpy arrays only; anything else is refused unread.
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refers to {module}.{name}, which such a file never holds")


def read_youcook_pkl(path: Path) -> FeatureItems:
    """The HowTo100M release's `youcook_val.pkl`: a list of {id, 2d (2048,), 3d (2048,), caption}."""
    if not path.is_file():
        raise BenchmarkFileError(path, missing_file(path))
    raw = path.read_bytes()
    try:
        try:
            items = _ArraysOnly(io.BytesIO(raw)).load()
        except UnicodeDecodeError:  # a Python 2 pickle
            items = _ArraysOnly(io.BytesIO(raw), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise BenchmarkFileError(path, f"not a readable youcook_val.pkl ({exc})") from None
    if not isinstance(items, list) or not items:
        raise BenchmarkFileError(path, "expected a non-empty list of {id, 2d, 3d, caption}")
    ids, captions, rows_2d, rows_3d = [], [], [], []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not {"id", "2d", "3d", "caption"} <= set(item):
            raise BenchmarkFileError(path, f"item {i} is not a dict with id, 2d, 3d and caption")
        ids.append(str(item["id"]))
        captions.append(str(item["caption"]))
        rows_2d.append(np.asarray(item["2d"], dtype=np.float32).reshape(-1))
        rows_3d.append(np.asarray(item["3d"], dtype=np.float32).reshape(-1))
    return FeatureItems(ids, captions, _stack(path, rows_2d, "2d"), _stack(path, rows_3d, "3d"))


def _stack(path: Path, rows: list[np.ndarray], name: str) -> np.ndarray:
    sizes = {r.shape[0] for r in rows}
    if len(sizes) != 1:
        raise BenchmarkFileError(path, f"{name} vectors differ in length ({sorted(sizes)})")
    return np.stack(rows)


# --- MSR-VTT --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """One MSR-VTT test sentence and the video it describes."""

    key: str
    video_id: str
    sentence: str


def read_msrvtt_csv(path: Path) -> list[Query]:
    """`MSRVTT_JSFUSION_test.csv`: a header with video_id and sentence (key, vid_key optional).

    The JSFusion file is comma-separated; copies re-saved with ';' circulate and are read too.
    """
    lines = _read_text(path).splitlines()
    if not lines:
        raise BenchmarkFileError(path, "empty file")
    delimiter = ";" if lines[0].count(";") > lines[0].count(",") else ","
    try:
        rows = list(csv.reader(lines, delimiter=delimiter))
    except csv.Error as exc:  # a field past the csv module's 128 KiB limit
        raise BenchmarkFileError(path, f"not a readable CSV ({exc})") from None
    header = [h.strip() for h in rows[0]]
    if "video_id" not in header or "sentence" not in header:
        raise BenchmarkFileError(path, f"header {','.join(header)!r} lacks video_id and sentence")
    vid_col, sent_col = header.index("video_id"), header.index("sentence")
    key_col = header.index("key") if "key" in header else None
    queries = []
    for n, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise BenchmarkFileError(path, f"line {n} has {len(row)} fields, the header {len(header)}")
        key = row[key_col] if key_col is not None else f"ret{n - 2}"
        queries.append(Query(key, row[vid_col].strip(), row[sent_col]))
    if not queries:
        raise BenchmarkFileError(path, "no rows after the header")
    return queries


def read_msrvtt_features(path: Path, queries: list[Query]) -> FeatureItems:
    """The release's `.pth` ({'2d': {vid: tensor(2048)}, '3d': {...}}) for the csv's queries, in order."""
    import torch

    if not path.is_file():
        raise BenchmarkFileError(path, missing_file(path))
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise BenchmarkFileError(path, f"not a readable torch file ({type(exc).__name__})") from None
    if not isinstance(data, dict) or not {"2d", "3d"} <= set(data):
        raise BenchmarkFileError(path, "expected a dict with '2d' and '3d' maps of video id -> tensor")
    rows: dict[str, list[np.ndarray]] = {"2d": [], "3d": []}
    for q in queries:
        for name in ("2d", "3d"):
            table = data[name]
            if not isinstance(table, dict) or q.video_id not in table:
                raise BenchmarkFileError(path, f"no {name} features for {q.video_id}")
            rows[name].append(np.asarray(table[q.video_id].float().reshape(-1).numpy()))
    return FeatureItems(
        [q.video_id for q in queries],
        [q.sentence for q in queries],
        _stack(path, rows["2d"], "2d"),
        _stack(path, rows["3d"], "3d"),
    )


# --- CrossTask ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskCard:
    """One CrossTask task: id, title, wikiHow URL and its ordered step descriptions."""

    task_id: str
    title: str
    url: str
    steps: tuple[str, ...]


def read_task_cards(path: Path) -> dict[str, TaskCard]:
    """`tasks_primary.txt`: records of id, title, url, step count, comma-separated steps, blank line."""
    lines = _read_text(path).splitlines()
    cards: dict[str, TaskCard] = {}
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        record = lines[i : i + 5]
        task_id = record[0].strip()
        if len(record) < 5:
            raise BenchmarkFileError(path, f"task {task_id} (line {i + 1}): record ends early")
        try:
            n_steps = int(record[3].strip())
        except ValueError:
            raise BenchmarkFileError(
                path, f"task {task_id} (line {i + 4}): step count {record[3]!r} is not a number"
            ) from None
        steps = tuple(record[4].strip().split(","))
        if len(steps) != n_steps:
            raise BenchmarkFileError(
                path, f"task {task_id} (line {i + 5}): {len(steps)} steps listed, {n_steps} announced"
            )
        cards[task_id] = TaskCard(task_id, record[1].strip(), record[2].strip(), steps)
        i += 5
    if not cards:
        raise BenchmarkFileError(path, "no task cards")
    return cards


def read_task_videos(path: Path) -> dict[str, list[str]]:
    """`videos.csv` / `videos_val.csv`: task -> video ids in file order (rows are task,vid,url)."""
    out: dict[str, list[str]] = {}
    for n, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.strip().split(",")
        if len(parts) != 3:
            raise BenchmarkFileError(path, f"line {n} has {len(parts)} fields, expected task,vid,url")
        out.setdefault(parts[0], []).append(parts[1])
    return out


def read_step_annotation(path: Path, n_steps: int) -> list[tuple[int, float, float]]:
    """`annotations/<task>_<vid>.csv`: (1-based step, start_s, end_s) rows."""
    rows = []
    for n, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.strip().split(",")
        try:
            step, start, end = int(parts[0]), float(parts[1]), float(parts[2])
        except (ValueError, IndexError):
            raise BenchmarkFileError(path, f"line {n} is not step,start,end") from None
        if len(parts) != 3 or not 1 <= step <= n_steps or end < start or start < 0:
            raise BenchmarkFileError(
                path,
                f"line {n}: step {parts[0]} [{parts[1]}, {parts[2]}] does not fit a task of {n_steps} steps",
            )
        rows.append((step, start, end))
    return rows


def missing_file(path: Path) -> str:
    """Why a benchmark file cannot be read: a folder in its place, or nothing there."""
    return "is a directory, not a file" if path.is_dir() else "no such file"
