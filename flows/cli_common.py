"""Shared CLI pieces: one-line errors with exit 2, the --data-root option, progress display."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import Annotated, NoReturn, TypeVar

import typer

T = TypeVar("T")

DataRootOption = Annotated[
    str | None,
    typer.Option(
        "--data-root", help="Data root: a local path or fsspec URL. Default $HOWTO_DATA_ROOT or ./data."
    ),
]


# Every stage registers its benchmark here (`bench_app.command("search")(...)`); flows/cli.py mounts it.
bench_app = typer.Typer(
    help="Benchmarks that print ratios measured side by side in one run.", no_args_is_help=True
)


class UsageProblem(Exception):
    """Bad input from the user: reported as one line and exit code 2."""


def fail(message: str) -> NoReturn:
    """Print `error: message` on stderr and exit 2, without a traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def is_terminal() -> bool:
    return sys.stderr.isatty()


def progress(items: Iterable[T], total: int | None, description: str) -> Iterator[T]:
    """Rich progress bar on a terminal, a plain log line every ~10% otherwise."""
    if is_terminal():
        from rich.progress import track

        yield from track(items, total=total, description=description, transient=True)
        return
    log = logging.getLogger("howto")
    step = max(1, (total or 10) // 10)
    for i, item in enumerate(items, 1):
        yield item
        if total and (i % step == 0 or i == total):
            log.info("%s: %d/%d", description, i, total)


def setup_logging(verbose: bool = False) -> None:
    """Our packages at INFO (DEBUG with -v); libraries (httpx, yt-dlp, ...) only from WARNING, or every
    HTTP request to the Prefect API would print a line."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for name in ("tasks", "models", "storage", "flows"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.INFO)
