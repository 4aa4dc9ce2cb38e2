"""CLI: `howto query`, `howto stats`, `howto bench query`, `howto catalog refresh`."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import math
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from flows.cli_common import ExistingDataRootOption, bench_app, data_root_with_datasets, fail, require_utf8
from flows.terminal_text import terminal_safe
from storage.catalog import QueryLimits, QueryOutOfMemory, query_batches, refresh, stats
from storage.layout import DataRoot
from tasks.bench.query import run_bench


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def json_value(value: Any) -> Any:
    """A DuckDB value as plain JSON: NaN and infinities as null (JSON has no such numbers: Python's bare
    NaN made the output unreadable to every strict parser), BLOBs as hex, intervals as seconds, dates and
    times in ISO 8601, decimals as numbers, lists and structs element by element."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return json_value(float(value))
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)  # UUIDs and other scalar types: their text


def csv_cell(value: Any) -> Any:
    """A CSV cell: lists and structs as JSON text (not Python's repr), other values as the csv module writes them."""
    if isinstance(value, dict | list | tuple):
        return json.dumps(json_value(value), ensure_ascii=False)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return value


# A table is drawn once all its rows are in: past this many it is no table to read, and the rows of a bare
# `SELECT * FROM clips` filled the memory (~0.7 KB a row) until the process was killed. csv and json are
# written batch by batch, as DuckDB streams them, whatever the size.
TABLE_MAX_ROWS = 100_000


def _print_result(columns: list[str], batches: Iterator[list[tuple[Any, ...]]], fmt: OutputFormat) -> None:
    if fmt is OutputFormat.json:
        # The text json.dumps(rows, indent=1) gives, one row at a time: each row's dump indented one level.
        opened = False
        for batch in batches:
            for row in batch:
                text = json.dumps(json_value(dict(zip(columns, row, strict=True))), indent=1, allow_nan=False)
                sys.stdout.write(("," if opened else "[") + "\n" + textwrap.indent(text, " "))
                opened = True
        sys.stdout.write("\n]\n" if opened else "[]\n")
    elif fmt is OutputFormat.csv:
        # Lines end in \n, as DuckDB's COPY and Unix tools write them: the csv module's default \r\n left a
        # \r on the last field of `$(howto query ... | tail -1)`. CSV readers take either.
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        for batch in batches:
            writer.writerows([csv_cell(v) for v in row] for row in batch)
    else:
        rows: list[tuple[Any, ...]] = []
        for batch in batches:
            rows += batch
            if len(rows) > TABLE_MAX_ROWS:
                fail(
                    f"more than {TABLE_MAX_ROWS:,} rows, too many to draw as a table: add a LIMIT, or write "
                    "them with --format csv or --format json (streamed, any number of rows)"
                )
        # The cells are data (scraped titles, captions): as Text, never read as Rich markup (a title with
        # `[/]` stopped the command with a MarkupError traceback, `[link=...]` drew a hidden link), and
        # their control characters shown as escapes, never sent to the terminal to obey.
        names = [terminal_safe(c, keep_lines=True) for c in columns]
        cells = [["" if v is None else terminal_safe(str(v), keep_lines=True) for v in row] for row in rows]
        table = Table()
        for name in names:
            table.add_column(Text(name))
        for row_cells in cells:
            table.add_row(*(Text(cell) for cell in row_cells))
        _table_console(names, cells).print(table)


def _table_console(columns: list[str], cells: list[list[str]]) -> Console:
    """The terminal's console; in a pipe or a file, one as wide as the whole table. Rich assumes 80 columns
    where stdout is no terminal and cut every wider cell short (`crawl…`): a file of the output lost data."""
    console = Console()
    if console.is_terminal:
        return console
    # Terminal cells, not characters: a CJK character or an emoji takes two, and a width counted in
    # characters cut such titles short (`如何制作…`) all the same.
    widths = [
        max([cell_len(name), *(cell_len(line) for row in cells for line in row[i].splitlines())])
        for i, name in enumerate(columns)
    ]
    return Console(width=max(80, sum(w + 3 for w in widths) + 1))  # a cell's padding and border: 3


def query_command(
    sql: Annotated[
        str,
        typer.Argument(
            help="A read-only SQL query over the dataset views (tasks, videos, ...). One that starts with "
            "'-' (a -- comment) goes after the options and a lone --: howto query --data-root R -- \"$(cat q.sql)\"."
        ),
    ],
    data_root: ExistingDataRootOption = None,
    fmt: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            help="Output format. json: strict JSON (NaN as null, BLOBs as hex, intervals in seconds); csv: lists and structs as JSON text.",
        ),
    ] = OutputFormat.table,
    memory_limit: Annotated[
        str | None,
        typer.Option(
            help="Most memory DuckDB may take for the query, e.g. 4GB or 500MiB (default: 80% of the RAM); "
            "past it, sorts, joins and aggregates spill to disk beside the catalog.",
        ),
    ] = None,
    max_spill: Annotated[
        str | None,
        typer.Option(
            help="Most disk the query may spill to, e.g. 20GB (default: DuckDB's, 90% of that disk's free "
            "space); 0B: no spilling.",
        ),
    ] = None,
) -> None:
    """Query the datasets with DuckDB (one view per dataset, plus video_catalog). Read-only.

    The memory and spill caps are options, not SET statements: the sandbox locks DuckDB's settings."""
    # Undecodable bytes (kept by Python as lone surrogates) would reach the SQL splitter as text it cannot
    # encode: refused here, naming the argument.
    require_utf8(sql, "SQL")
    limits = QueryLimits(
        memory_bytes=_size(memory_limit, "--memory-limit", MIN_QUERY_MEMORY),
        spill_bytes=_size(max_spill, "--max-spill", 0),
    )
    # A refused or failed query is a QueryError: one line, exit 2, nothing written (the sandbox sees to it).
    try:
        with query_batches(sql, data_root_with_datasets(data_root), limits=limits) as (columns, batches):
            _print_result(columns, batches, fmt)
    except QueryOutOfMemory as exc:
        now = f" (now {memory_limit})" if memory_limit else ""
        fail(
            f"{exc}: give the query more memory with --memory-limit SIZE{now} or more disk with --max-spill SIZE"
        )


# Below this DuckDB cannot open the catalog and run the smallest query.
MIN_QUERY_MEMORY = 32 * 1000**2


def _size(text: str | None, option: str, minimum: int) -> int | None:
    """A size given as 4GB, 500MB, 2GiB or 123B (pydantic's ByteSize: KB = 1000, KiB = 1024), in bytes."""
    if text is None:
        return None
    from pydantic import ByteSize, TypeAdapter, ValidationError

    try:
        size = int(TypeAdapter(ByteSize).validate_python(text))
    except ValidationError:
        fail(f"{option} {text!r}: not a size; give one such as 4GB, 500MB or 2GiB")
    if size < minimum:
        fail(f"{option} {text!r}: at least {minimum // 1000**2}MB")
    return size


def stats_command(
    data_root: ExistingDataRootOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """One summary: tasks, videos kept and dropped by reason, clips, hours of video, words, feature and
    audio coverage (and videos whose features come from random weights), top categories."""
    summary = stats(data_root_with_datasets(data_root))
    if as_json:
        typer.echo(json.dumps(summary, indent=1))
        return
    # soft_wrap: a line longer than the terminal (or 80 columns in a pipe) is not broken inside a value.
    console = Console(soft_wrap=True, highlight=False)
    console.print(f"[bold]data root[/bold] {_shown(summary['data_root'])}")
    for section in ("tasks", "videos", "clips", "features", "audio"):
        parts = ", ".join(f"{k}={_fmt(v)}" for k, v in summary[section].items())
        console.print(f"[bold]{section}[/bold] {_shown(parts)}")
    random = summary["features"]["videos_random_weights"]
    if random:
        console.print(f"[bold]note[/bold] the features of {random} video(s) come from random weights, not "
                      "pretrained ones: fine for trying the pipeline, meaningless for research")  # fmt: skip
    if summary["top_categories"]:
        console.print("[bold]top categories[/bold] (clips)")
    for row in summary["top_categories"]:
        console.print(f"  {row['clips']:>8}  {_shown(row['category'])}")


def _shown(text: str) -> str:
    """Data (a category scraped from wikiHow, a drop reason, a path) inside a line of Rich markup: its control
    characters as escapes, and its brackets as text, never as markup (a category with `[/]` stopped
    `howto stats` with a MarkupError traceback; `[link=...]` drew a hidden link)."""
    return escape(terminal_safe(text))


def _fmt(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}" if value else "{}"
    return str(value)


def bench_query_command(
    rows: Annotated[int, typer.Option("--rows", help="Synthetic clips to generate.")] = 10_000_000,
    data_root: Annotated[
        str | None,
        typer.Option(
            "--data-root",
            help="Where to write: a new or empty folder, or one an earlier bench filled; never a real data "
            "root (refused). Default: a temp dir, removed.",
        ),
    ] = None,
) -> None:
    """Generate synthetic clips metadata and time three typical DuckDB queries in one run."""
    if rows <= 0:
        fail("--rows must be positive")
    with tempfile.TemporaryDirectory(prefix="howto-bench-query-") as tmp:
        root = DataRoot.from_any(data_root or tmp)
        timings = run_bench(root, rows, log=typer.echo)
        for t in timings:
            typer.echo(f"{t.name:<34} {t.median_s * 1000:9.1f} ms  ({t.result})")
        goal = {"a": 1.0, "b": 0.1}
        for t in timings:
            key = t.name[0]
            if key in goal:
                verdict = "meets" if t.median_s < goal[key] else "MISSES"
                typer.echo(f"goal ({key}) < {goal[key] * 1000:.0f} ms: {verdict}")


def refresh_command(data_root: ExistingDataRootOption = None) -> None:
    """Recreate the DuckDB views over the current shards."""
    typer.echo(refresh(data_root_with_datasets(data_root)))


catalog_app = typer.Typer(help="The DuckDB catalog in the data root.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("query")(query_command)
    app.command("stats")(stats_command)
    bench_app.command("query")(bench_query_command)
    catalog_app.command("refresh")(refresh_command)
    app.add_typer(catalog_app, name="catalog")
