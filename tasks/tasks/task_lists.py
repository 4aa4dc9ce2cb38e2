"""Read task lists people already have: HowTo100M's task_ids.csv, one title per line, or a CSV with `title`."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ImportFormat = Literal["howto100m", "lines", "csv"]
FORMATS: tuple[str, ...] = ("howto100m", "lines", "csv")
_ID_COLUMNS = ("source_id", "task_id", "id")


class ImportFormatError(ValueError):
    """The file does not match the format asked for; the message names the line."""


@dataclass(frozen=True)
class ImportedTask:
    """One row of an imported list: the file's own id (or line number) and the title exactly as written."""

    source_id: str
    title: str


def read_text(path: str | Path) -> str:
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"not UTF-8 text (byte {exc.start})") from None


def _lines(text: str) -> list[str]:
    # str.splitlines() also breaks on U+2028, U+0085 and form feeds, which may sit inside a title.
    return [line.removesuffix("\r") for line in text.split("\n")]


def _is_header(line: str) -> bool:
    """A column-name row (`id<TAB>title`, `task_id,title`, `Task ID<TAB>Task`): its first field, tab- or
    comma-separated, names an id column. The release's ids are numbers, so no task row looks like this."""
    first = re.split(r"[\t,]", line, maxsplit=1)[0]
    return re.sub(r"[\s-]+", "_", first.strip().strip('"').lower()) in (*_ID_COLUMNS, "taskid")


def parse_howto100m(text: str) -> list[ImportedTask]:
    """HowTo100M task_ids.csv: `id<TAB>title`, no header, no quoting.

    Titles contain `"` and commas, so a CSV reader would merge or mangle rows; we split each line
    on its first tab and keep the rest byte for byte. The published file has no header, but an edited
    copy may have gained one: a first row naming an id column is skipped (it was imported as a task
    titled "title").
    """
    tasks = []
    first = True
    for number, line in enumerate(_lines(text), 1):
        if not line.strip():
            continue
        if first:
            first = False
            if _is_header(line):
                continue
        source_id, sep, title = line.partition("\t")
        if not sep or not source_id.strip() or not title:
            raise ImportFormatError(f"line {number}: expected 'id<TAB>title', got {line[:60]!r}")
        tasks.append(ImportedTask(source_id.strip(), title))
    return tasks


def parse_lines(text: str) -> list[ImportedTask]:
    """One title per line; the line number is the source id. Blank lines are skipped."""
    return [
        ImportedTask(str(number), line.strip()) for number, line in enumerate(_lines(text), 1) if line.strip()
    ]


def parse_csv(text: str) -> list[ImportedTask]:
    """A CSV with a header naming a `title` column and optionally an id column (source_id, task_id or id)."""
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip() for f in reader.fieldnames or []]
    if "title" not in fields:
        raise ImportFormatError(f"no 'title' column in header {fields!r}")
    reader.fieldnames = fields
    id_column = next((c for c in _ID_COLUMNS if c in fields), None)
    tasks = []
    try:
        for row in reader:
            title = row.get("title") or ""
            if not title.strip():
                continue
            source_id = (row.get(id_column) or "").strip() if id_column else ""
            tasks.append(ImportedTask(source_id or str(reader.line_num), title))
    except csv.Error as exc:  # a field past the csv module's 128 KiB limit: a traceback, not a line
        raise ImportFormatError(f"after line {reader.line_num}: {exc}") from None
    return tasks


def parse_import(text: str, fmt: str) -> list[ImportedTask]:
    if fmt == "howto100m":
        return parse_howto100m(text)
    if fmt == "lines":
        return parse_lines(text)
    if fmt == "csv":
        return parse_csv(text)
    raise ImportFormatError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def read_import(path: str | Path, fmt: str) -> list[ImportedTask]:
    """Read and parse a task list file; raises ImportFormatError (one line) or OSError."""
    return parse_import(read_text(path), fmt)
