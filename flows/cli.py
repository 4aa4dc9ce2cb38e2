"""The `howto` command: mounts every `flows/cli_*.py` module's commands on one typer app."""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil

# Nothing leaves this machine unasked: Prefect's ephemeral server would otherwise send telemetry.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# The ephemeral server can take a while to start on a busy 2-core machine; Prefect's default is 20 s.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
# Our modules log with logging.getLogger(__name__) (training epochs, weights, clients): route them through
# Prefect's handlers at its level, so they show in the terminal and in the flow run's logs in the UI.
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "tasks,models,storage,flows")
# Outside a flow run (single-file commands, torchrun ranks) those loggers have no run to send logs to.
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")

import typer

import flows
from flows.cli_common import bench_app, setup_logging
from flows.cli_errors import HowtoGroup
from flows.prefect_server import serve_in_own_session

app = typer.Typer(
    name="howto",
    cls=HowtoGroup,  # the one handler of expected failures (one line, exit 2; -v adds the traceback)
    help="Build narrated instructional-video datasets and train text-video embeddings (Prefect + Parquet).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from tasks.common import code_version

        typer.echo(f"howto {code_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Debug logging, and the traceback of an error."
    ),
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the version (and git commit) and exit.",
    ),
) -> None:
    setup_logging(verbose)


def _mount_all() -> None:
    # Each stage owns a `flows/cli_<stage>.py` with `register(app)`; discovering them keeps this file
    # free of edits as stages are added.
    for info in sorted(pkgutil.iter_modules(flows.__path__), key=lambda m: m.name):
        if info.name.startswith("cli_") and info.name not in ("cli_common", "cli_errors", "cli_progress"):
            module = importlib.import_module(f"flows.{info.name}")
            register = getattr(module, "register", None)
            if register is not None:
                register(app)
    app.add_typer(bench_app, name="bench")


def one_line_summary(doc: str) -> str:
    """A docstring's first paragraph as one line: what a command list shows beside the command's name."""
    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())


def _summaries_on_one_line(typer_app: typer.Typer) -> None:
    # In its rich mode typer lists each command with its docstring's first paragraph, hard line breaks
    # kept: a summary wrapped at 110 columns in the source came out broken mid-sentence in `howto --help`.
    # A command's own --help reflows its text already; only the lists need the one-line form.
    for command in typer_app.registered_commands:
        doc = command.help or (command.callback.__doc__ if command.callback else None)
        if command.short_help is None and doc:
            command.short_help = one_line_summary(doc)
    for group in typer_app.registered_groups:
        if isinstance(group.typer_instance, typer.Typer):
            _summaries_on_one_line(group.typer_instance)


_mount_all()
_summaries_on_one_line(app)
# A temporary Prefect server that Ctrl-C does not kill mid-command, and that a killed command does not leave.
serve_in_own_session()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
