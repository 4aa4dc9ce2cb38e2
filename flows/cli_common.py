"""Shared CLI pieces: one-line errors with exit 2, the --data-root option, choice options, logging."""

from __future__ import annotations

import functools
import inspect
import logging
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar, get_args

import typer
from pydantic import BaseModel

from flows.cli_errors import UsageProblem, expected_cause, expected_types
from flows.console_logs import guard_console_logs
from storage.layout import DataRoot, check_data_root
from tasks.bench.isa import ISA_CAPS, missing_caps, rerun_capped
from tasks.config_types import DEVICES_HELP, check_crawl_id, check_device
from tasks.train.config import TrainConfig

T = TypeVar("T")
G = TypeVar("G")


def _checked_root(write: bool) -> Callable[[str | None], str | None]:
    """An option callback that refuses an unusable data root in one line, before the command runs."""

    def check(value: str | None) -> str | None:
        check_data_root(DataRoot.from_any(value), write=write)  # DataRootProblem: one line, exit 2
        return value

    return check


_ROOT_HELP = "Data root: a local path or fsspec URL. Default $HOWTO_DATA_ROOT or ./data."
# Commands that write: the root is created if missing, and a file, a read-only mount or a full disk
# is refused up front, naming the root.
DataRootOption = Annotated[
    str | None, typer.Option("--data-root", help=_ROOT_HELP, callback=_checked_root(write=True))
]
# Commands that only read (query, stats, report, eval, export): the root must exist, and nothing is
# created for a mistyped one ("no data root at PATH", exit 2).
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


IsaOption = Annotated[
    str,
    choice_option(
        "--isa",
        tuple(ISA_CAPS),
        "CPU instructions the kernels may use: native, or avx2 to measure here the fp32 path an AVX2-only "
        "CPU takes (oneDNN, ATen and MKL capped; the bench reruns itself in a child process).",
    ),
]


def rerun_if_capped(isa: str, argv: list[str]) -> None:
    """With a cap this process does not have yet, run the same bench in a capped child and exit with its
    code: the libraries read their caps once, at their first kernel."""
    missing = missing_caps(isa, os.environ)
    if missing:
        typer.echo(f"--isa {isa}: running again with {' '.join(f'{k}={v}' for k, v in missing.items())}")
        raise typer.Exit(rerun_capped(isa, argv))


def data_root_with_datasets(data_root: str | None) -> DataRoot:
    """The root, refused when it holds no dataset yet: a query, a report or an export there would answer
    from nothing, which reads like "no rows" when the real mistake is the folder (a typo, the root's
    parent), and a catalog or report would be written into a folder that is not a data root."""
    from storage.catalog import holds_datasets

    root = DataRoot.from_any(data_root)
    if not holds_datasets(root):
        fail(f"{root.url} is not a data root: it holds no datasets (run a stage first, or check --data-root)")
    return root


def fail(message: str) -> NoReturn:
    """Stop the command with `error: message` on stderr and exit 2 (flows/cli_errors.py prints it)."""
    raise UsageProblem(message)


def finite(flag: str) -> Callable[[float | None], float | None]:
    """An option callback refusing inf (typer's range check lets it past a `min`) and nan: `--lambda-va inf`
    trained FAC to NaN weights and wrote them over the root's checkpoint, `--gb inf` never ended."""

    def callback(value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            fail(f"{flag}: {value} is not a finite number")
        return value

    return callback


def require_file(path: Path, what: str = "file") -> None:
    """A file the command reads: a folder or a missing path is refused in one line, naming it."""
    if path.is_dir():
        fail(f"{path}: is a directory, not a {what}")
    if not path.is_file():
        fail(f"{path}: no such {what}")


def require_utf8(value: str, what: str) -> str:
    """Text typed on the command line must be valid UTF-8: Python keeps undecodable bytes as lone
    surrogates, which no tokenizer or SQL parser takes; refused here in one line, naming `what`."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        fail(f"{what}: not valid UTF-8 (at character {exc.start + 1}); check the terminal's encoding")
    return value


def checked_by(flag: str, check: Callable[[str], str]) -> Callable[[str | None], str | None]:
    """An option callback running `check` (a ValueError saying what is allowed) as the option is parsed:
    a refused value is one line naming `flag`, exit 2."""

    def callback(value: str | None) -> str | None:
        if value is not None:
            try:
                check(value)
            except ValueError as exc:
                fail(f"{flag}: {exc}")
        return value

    return callback


def device_option(help: str = f"{DEVICES_HELP}.") -> Any:
    """The --device option: auto, cpu, cuda or cuda:N (tasks/config_types.py), checked as it is parsed."""
    return typer.Option("--device", help=help, callback=checked_by("--device", check_device))


DeviceOption = Annotated[str, device_option()]


def crawl_id_option(help: str) -> Any:
    """The --crawl-id option: an id that could not name a folder under the data root is refused
    (tasks/config_types.py check_crawl_id) as it is parsed."""
    return typer.Option("--crawl-id", help=help, callback=checked_by("--crawl-id", check_crawl_id))


def require_device(device: str, where: str = "--device") -> None:
    """A device asked for must be on this machine: one line naming `where`, not a torch traceback."""
    if device == "auto" or device == "cpu":
        return  # no torch import for the common case
    from models.encoders import DeviceUnavailable, pick_device

    try:
        pick_device(device)
    except DeviceUnavailable as exc:
        fail(f"{where} {device}: {exc.reason}")


class NoTracebackFormatter(logging.Formatter):
    """Log lines without the traceback a record carries (shown only with -v)."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def _about_expected_failure(record: logging.LogRecord) -> bool:
    """Whether a run log record reports an expected failure: an error (or the run's closing "Finished in
    state Failed" line) whose exception is one (or was raised from one), or whose message names one the
    way Prefect writes a failed state ("... exception Name: text", "Name('text')"). A retry notice (INFO)
    stays: the user should know why nothing seems to happen for a while."""
    if record.levelno < logging.ERROR and not record.getMessage().startswith("Finished in state Failed"):
        return False
    if record.exc_info and record.exc_info[1] is not None:
        return expected_cause(record.exc_info[1]) is not None
    names = "|".join(re.escape(kind.__name__) for kind in expected_types())
    return bool(names) and re.search(rf"\b(?:{names})(?:\(|: )", record.getMessage()) is not None


class _QuietRunLogs(logging.Filter):
    """On the prefect.flow_runs and prefect.task_runs loggers: Prefect's engine logs a failed run (with its
    traceback) through whichever console handler Prefect configured. Without -v the terminal gets no
    traceback, and nothing at all about an expected failure: the CLI says it once, as its `error:` line.
    Those records still reach the logger's own handlers (the run's logs in Prefect's API and UI)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _about_expected_failure(record):
            for handler in logging.getLogger(record.name).handlers:  # the API handler, not the console
                if record.levelno >= handler.level:
                    handler.handle(record)
            return False  # not passed on to the console handlers above
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


_QUIET_RUN_LOGS = _QuietRunLogs()
# The loggers Prefect's flow and task engines report failures on.
PREFECT_RUN_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is now: while a progress bar runs, rich swaps in a proxy that prints
    log lines above the bar instead of through it."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:  # StreamHandler.__init__ assigns it; the property wins
        pass


def setup_logging(verbose: bool = False) -> None:
    """Our packages at INFO (DEBUG with -v); libraries (httpx, yt-dlp, ...) only from WARNING, or every
    HTTP request to the Prefect API would print a line. Tracebacks in log records only with -v."""
    handler = CurrentStderrHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT) if verbose else NoTracebackFormatter(LOG_FORMAT))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, handlers=[handler])
    guard_console_logs()  # scraped text in a log line is shown as text, never obeyed by the terminal
    for name in ("tasks", "models", "storage", "flows"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in PREFECT_RUN_LOGGERS:
        if verbose:
            logging.getLogger(name).removeFilter(_QUIET_RUN_LOGS)
        else:
            logging.getLogger(name).addFilter(_QUIET_RUN_LOGS)
