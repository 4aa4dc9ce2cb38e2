"""Shared CLI pieces: one-line errors with exit 2, the --data-root option, choice options, progress display."""

from __future__ import annotations

import functools
import inspect
import logging
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Annotated, Any, NoReturn, TypeVar, get_args

import typer
from pydantic import BaseModel

from storage.layout import DataRoot, DataRootProblem, check_data_root
from tasks.training.config import TrainConfig

T = TypeVar("T")
G = TypeVar("G")


def _checked_root(write: bool) -> Callable[[str | None], str | None]:
    """An option callback that refuses an unusable data root in one line, before the command runs."""

    def check(value: str | None) -> str | None:
        try:
            check_data_root(DataRoot.from_any(value), write=write)
        except DataRootProblem as exc:
            fail(str(exc))
        return value

    return check


_ROOT_HELP = "Data root: a local path or fsspec URL. Default $HOWTO_DATA_ROOT or ./data."
# Commands that write: the root is created if missing, and a file, a read-only mount or a full disk
# is refused up front, naming the root.
DataRootOption = Annotated[
    str | None, typer.Option("--data-root", help=_ROOT_HELP, callback=_checked_root(write=True))
]
# Commands that only read (query, stats): the root must exist; a mistyped root is an error.
ExistingDataRootOption = Annotated[
    str | None, typer.Option("--data-root", help=_ROOT_HELP, callback=_checked_root(write=False))
]


def field_choices(model: type[BaseModel], field: str) -> tuple[str, ...]:
    """The allowed values of a config's Literal field: the config stays the one source of truth."""
    return tuple(str(v) for v in get_args(model.model_fields[field].annotation))


def one_of(choices: Sequence[str]) -> Callable[[str], str]:
    """A typer parser that accepts only `choices`; with `choice_metavar` they show in --help.

    A parser rather than an Enum: values stay plain str, typed for mypy, and repeatable options work
    (typer takes no list[Literal[...]]).
    """

    def parse(value: str) -> str:
        if value not in choices:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(choices)}")
        return value

    return parse


def choice_metavar(choices: Sequence[str]) -> str:
    return "[" + "|".join(choices) + "]"


def choice_option(flag: str, choices: Sequence[str], help: str) -> Any:
    """A typer option that takes one of `choices` and lists them in --help."""
    return typer.Option(flag, parser=one_of(choices), metavar=choice_metavar(choices), help=help)


LOSSES = field_choices(TrainConfig, "loss")
TEXTS = field_choices(TrainConfig, "text")
LossOption = Annotated[
    str | None, choice_option("--loss", LOSSES, "Training loss (train.loss); HowTo100M: max_margin.")
]
TextOption = Annotated[
    str | None,
    choice_option(
        "--text", TEXTS, "Text side of the embedding (train.text); word2vec needs train.word2vec_path."
    ),
]


def option_group(options: Callable[..., G], name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Give a command the options several commands share, declared once as the parameters of `options`.

    typer builds a command from its signature and has no way to group options into one parameter, so the
    decorated command shows its own parameters (less `name`) followed by those of `options`; when it runs,
    `options` gets their values and its result is passed to the command as `name`.
    """
    shared = list(inspect.signature(options, eval_str=True).parameters.values())

    def decorate(command: Callable[..., T]) -> Callable[..., T]:
        signature = inspect.signature(command, eval_str=True)
        params = [p for p in signature.parameters.values() if p.name != name] + shared

        @functools.wraps(command)
        def run(**values: Any) -> T:
            group = options(**{p.name: values.pop(p.name) for p in shared})
            return command(**values, **{name: group})

        # Evaluated annotations: typer must not resolve the strings in this module's namespace.
        run.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in params} | {"return": signature.return_annotation}
        return run

    return decorate


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
