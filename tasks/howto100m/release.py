"""The release's tables: HowTo100M_v1.csv (video -> categories, rank, task), task_ids.csv, feature files."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.lib.format as npy_format
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from tasks.tasks.task_lists import ImportedTask, read_import
from tasks.wikihow.titles import task_id
from tasks.youtube.ids import is_video_id

V1_COLUMNS = ("video_id", "category_1", "category_2", "rank", "task_id")
# 2D ResNet-152 rows at 1 per second, 3D ResNeXt-101 rows at one per 16 frames of 24 fps (1.5 per second).
FEATURE_MODELS = {"2d": ("resnet152", 1.0), "3d": ("resnext101", 24.0 / 16.0)}


class ReleaseFormatError(ValueError):
    """A release file does not have the published layout; the message names the file and the problem."""


@dataclass(frozen=True)
class VideoMeta:
    """One HowTo100M_v1.csv line: category_1 is wikiHow's level-1 category, category_2 the level below."""

    video_id: str
    category_1: str | None
    category_2: str | None
    rank: int | None
    task: str | None  # the release's own (numeric) task id
    path: str | None  # the optional `path` column the reference code adds for feature files


class VideoTable:
    """HowTo100M_v1.csv column-wise and sorted by video id (1.24M rows: ~430 MB held, 590 MB at the peak of
    reading, measured; a list per column made it ~700 MB).

    `seen` marks the rows a caption file has reached, so the videos it never mentions can follow.
    """

    def __init__(self, table: pa.Table, bad_lines: int, duplicates: int) -> None:
        order = pc.sort_indices(table, [("video_id", "ascending"), ("line", "ascending")])
        table = table.take(order)
        ids = np.asarray(table.column("video_id").to_pylist(), dtype="U11")
        first = np.ones(len(ids), dtype=bool)
        first[1:] = ids[1:] != ids[:-1]  # a video listed twice keeps its first line
        self.table = table.filter(pa.array(first))
        self.ids = ids[first]
        self.lines = self.table.column("line").to_numpy()
        self.seen = np.zeros(len(self.ids), dtype=bool)
        self.bad_lines, self.duplicates = bad_lines, duplicates + int((~first).sum())
        # A Python list per column made a str object per row: 1.24M rows took ~430 MB over the table itself.
        # The categories and tasks repeat (a few hundred, 23k values): codes into their distinct values.
        self._cols = {name: _codes(self.table.column(name)) for name in ("category_1", "category_2", "task")}
        self._rank = self.table.column("rank").fill_null(-1).to_numpy()
        self._path = self.table.column("path").combine_chunks()  # nearly always empty: read per row

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def read(cls, path: str | Path) -> VideoTable:
        return cls(*_read_v1(path))

    def find(self, video_id: str) -> int:
        """The row of a video, or -1 when the file does not list it."""
        at = int(np.searchsorted(self.ids, video_id))
        return at if at < len(self.ids) and self.ids[at] == video_id else -1

    def meta(self, row: int) -> VideoMeta:
        def value(name: str) -> str | None:
            codes, values = self._cols[name]
            return values[codes[row]] if codes[row] >= 0 else None

        rank = int(self._rank[row])
        return VideoMeta(
            str(self.ids[row]), value("category_1"), value("category_2"), rank if rank >= 0 else None,
            value("task"), self._path[row].as_py(),
        )  # fmt: skip

    def unseen(self) -> Iterator[int]:
        """Rows no caption entry reached, in the file's own line order."""
        rows = np.flatnonzero(~self.seen)
        yield from (int(r) for r in rows[np.argsort(self.lines[rows], kind="stable")])

    def first_categories(self) -> dict[str, tuple[str | None, str | None]]:
        """Release task id -> (category_1, category_2) of its first line in the file."""
        ordered = self.table.sort_by([("line", "ascending")])
        grouped = ordered.group_by("task", use_threads=False).aggregate(
            [("category_1", "first"), ("category_2", "first")]
        )
        keys = grouped.column("task").to_pylist()
        cat1 = grouped.column("category_1_first").to_pylist()
        cat2 = grouped.column("category_2_first").to_pylist()
        return {k: (a, b) for k, a, b in zip(keys, cat1, cat2, strict=True) if k is not None}


def _codes(column: pa.ChunkedArray) -> tuple[np.ndarray, list[str | None]]:
    """A string column as (int codes per row, -1 for null; the distinct values the codes index)."""
    encoded = pc.dictionary_encode(column).combine_chunks()
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)
    return codes, encoded.dictionary.to_pylist()


def _read_v1(path: str | Path) -> tuple[pa.Table, int, int]:
    """Columns trimmed (the reference README's example has ", path" with a space), empty cells null."""
    try:
        raw = pacsv.read_csv(
            str(path),
            read_options=pacsv.ReadOptions(use_threads=False),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in (*V1_COLUMNS, "path")},
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise ReleaseFormatError(f"{path}: not a CSV file ({str(exc).splitlines()[0]})") from None
    names = [n.strip() for n in raw.column_names]
    raw = raw.rename_columns(names)
    missing = [c for c in V1_COLUMNS if c not in names]
    if missing:
        raise ReleaseFormatError(f"{path}: no column(s) {', '.join(missing)} in header {names}")
    cols = {}
    for name in (*V1_COLUMNS, "path"):
        if name in names:
            column = pc.utf8_trim_whitespace(raw.column(name).cast(pa.string()))
            cols[name] = pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)
        else:
            cols[name] = pa.nulls(raw.num_rows, pa.string())
    digits = pc.fill_null(pc.match_substring_regex(cols["rank"], r"^[0-9]{1,9}$"), False)
    rank = pc.if_else(digits, cols["rank"], pa.scalar(None, pa.string())).cast(pa.int32())
    table = pa.table({
        "video_id": cols["video_id"], "category_1": cols["category_1"], "category_2": cols["category_2"],
        "rank": rank, "task": cols["task_id"], "path": cols["path"],
        "line": pa.array(np.arange(raw.num_rows, dtype=np.int64)),
    })  # fmt: skip
    # Ids become file names (feature files, exports): only plain YouTube ids are taken.
    valid = pa.array([is_video_id(v) for v in table.column("video_id").to_pylist()], pa.bool_())
    return table.filter(valid), raw.num_rows - pc.sum(valid.cast(pa.int64())).as_py(), 0


@dataclass(frozen=True)
class ReleaseTask:
    """A task_ids.csv line: the release's id, the title as written, and our id for it (hash of the title)."""

    source_id: str
    title: str
    task_id: str


def read_task_ids(path: str | Path) -> list[ReleaseTask]:
    """task_ids.csv through the task-list importer (tab-separated, no header, titles kept byte for byte)."""
    items: list[ImportedTask] = read_import(path, "howto100m")
    if not items:
        # An empty list would import every video under an unknown task: surely the wrong file.
        raise ReleaseFormatError(f"{path}: no tasks (task_ids.csv lists 23,611 lines of `id<TAB>title`)")
    return [ReleaseTask(t.source_id, t.title, task_id(t.title)) for t in items]


# The reference extractor writes `<id>.npy`; the reference training code reads `th.load(<task>/<id>.pth)`.
FEATURE_SUFFIXES = (".npy", ".pth")


def feature_candidates(directory: str, meta: VideoMeta | None, video_id: str) -> list[str]:
    """Where a video's features may be: the `path` column, `<dir>/<id>.npy|.pth`, `<dir>/<task>/<id>.npy|.pth`."""
    found = []
    if meta is not None and meta.path:
        relative = os.path.normpath(meta.path)
        if not os.path.isabs(relative) and not relative.startswith(".."):  # never outside the folder
            found.append(os.path.join(directory, relative))
    found += [os.path.join(directory, f"{video_id}{suffix}") for suffix in FEATURE_SUFFIXES]
    if meta is not None and meta.task and meta.task.isdigit():
        found += [os.path.join(directory, meta.task, f"{video_id}{suffix}") for suffix in FEATURE_SUFFIXES]
    return found


def _read_rows(path: str) -> np.ndarray | str:
    """The array a features file holds, or why it cannot be read: a `.pth`/`.pt` file through torch (its
    one tensor), anything else as a .npy (never unpickling)."""
    if path.lower().endswith((".pth", ".pt")):
        from models.torch_files import NotACheckpoint, load_tensor_file  # torch only for such files

        try:
            return load_tensor_file(path, "features")
        except NotACheckpoint as exc:
            return f"unreadable features file ({exc.reason[:120]})"
    try:
        short = _npy_cut_short(path)
        if short is not None:
            return f"unreadable features file ({short})"
        rows = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:  # EOFError: an empty or cut .npy
        return f"unreadable features file ({type(exc).__name__}: {str(exc)[:80]})"
    if not isinstance(rows, np.ndarray):  # np.load opens any zip (a .npz, a torch file renamed) as an archive
        rows.close()
        return "unreadable features file (a zip archive, not one .npy array: a .npz, or a torch file not named .pth?)"
    return rows


# Every .npy version np.load reads (it refuses any other before allocating). 3.0 is 2.0's layout with its
# header in UTF-8 rather than Latin-1, and numpy has no public reader of it: read as Latin-1, a non-ASCII
# field name of a structured dtype comes out as other characters, but the shape and item size are the same.
_NPY_HEADERS = {
    (1, 0): npy_format.read_array_header_1_0,
    (2, 0): npy_format.read_array_header_2_0,
    (3, 0): npy_format.read_array_header_2_0,
}


def _npy_cut_short(path: str) -> str | None:
    """Why a .npy's data cannot be what its header says (fewer bytes than its shape and type need), or None.

    np.load allocates the whole array the header declares before it reads a byte: a 200-byte file declaring
    a (10**12, 2048) array raised MemoryError (3.6 PiB) out of the import, on every rerun; a file declaring
    tens of GB allocated them. A file that is no .npy (a zip, a torch file) is left to np.load."""
    with open(path, "rb") as handle:
        try:
            read_header = _NPY_HEADERS.get(npy_format.read_magic(handle))
            if read_header is None:
                return None
            shape, _, dtype = read_header(handle)
        except ValueError:
            return None
        need = math.prod(shape) * dtype.itemsize
        have = os.fstat(handle.fileno()).st_size - handle.tell()
    if need <= have:
        return None
    return f"its header declares {dtype} {tuple(shape)}, {need:,} bytes; the file holds {have:,}: cut short?"


def load_feature_rows(directory: str, meta: VideoMeta | None, video_id: str) -> tuple[np.ndarray | None, str]:
    """A video's (rows, dim) float16 matrix as stored, or None and why not."""
    path = next((p for p in feature_candidates(directory, meta, video_id) if os.path.isfile(p)), None)
    if path is None:
        return None, "no features file"
    rows = _read_rows(path)
    if isinstance(rows, str):
        return None, rows
    if (
        rows.ndim != 2
        or rows.shape[0] == 0
        or rows.shape[1] == 0
        or not np.issubdtype(rows.dtype, np.floating)
    ):
        return None, f"features file holds {rows.dtype} {tuple(rows.shape)}, not (rows, dim) floats"
    return np.ascontiguousarray(rows, dtype=np.float16), ""
