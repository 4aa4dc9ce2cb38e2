"""The CLI's root group: progress display around every command, and the one error handler: an expected failure is one line on stderr and exit 2, a bug a traceback; Ctrl-C one line and exit 130; a reader that closed stdout early (`howto stats | head -1`) a quiet exit 141.

Expected failures are the things a user fixes, not the code: a bad config value, a missing or unusable
data root, an upstream stage not run yet, missing model weights, a bot check, a malformed input file.
Each is an exception class of the package that detects it (storage, tasks and models cannot import
flows, so they cannot share one base class); `EXPECTED` lists them once, here. `-v/--verbose` prints
the traceback before the line, for a bug report. One more is known by its cause, not its class: a configured
Prefect API that does not answer (Prefect raises a bare RuntimeError for it; `prefect_api_down`).
"""

from __future__ import annotations

import errno
import os
import select
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

from flows.terminal_text import terminal_safe

if TYPE_CHECKING:
    from rich.console import Console

EXIT_EXPECTED = 2
EXIT_INTERRUPTED = 130
# The reader of stdout went away (`howto query ... | head -1`): the command stops writing and exits as a
# command killed by SIGPIPE does in a shell, 128 + 13, as most Unix tools do (`yes | head -1`), and as 130
# is 128 + SIGINT. Silently: the reader has what it wanted, and nothing on stderr pretends otherwise.
EXIT_READER_GONE = 141
# SIGTERM (`kill`, a cancelled Prefect run, a scheduler's stop) ends a command with 128 + 15, as it did when
# the signal killed the process outright, now after the same clean stop and one line as Ctrl-C.
EXIT_TERMINATED = 143


class UsageProblem(Exception):
    """Bad input found by a CLI command itself: reported as one line and exit 2."""


# (module, class) of every expected failure. Looked up in sys.modules only: an exception cannot be of a
# class whose module was never imported, and the CLI stays quick to start (no torch, no Prefect).
EXPECTED: tuple[tuple[str, str], ...] = (
    ("flows.cli_errors", "UsageProblem"),
    ("flows.config_file", "ConfigError"),  # bad --config file or --set value
    ("flows.pipeline", "ShareRefused"),  # runner.parts > 1 with a stage that cannot be split (search)
    ("pydantic", "ValidationError"),  # a config built from options
    ("storage.layout", "DataRootProblem"),  # missing, a file, read-only, full
    ("storage.private_temp", "UnsafeTempFolder"),  # a temp work folder another user made or can write
    ("storage.catalog", "QueryError"),
    ("storage.catalog", "CatalogError"),
    ("tasks.shard_runner", "UpstreamMissing"),  # "run X first"
    ("tasks.youtube.errors", "StageHalted"),  # bot check, 429s past the breaker
    ("tasks.youtube.video_download", "DiskSpaceLow"),
    ("tasks.features.weights", "WeightsMissing"),
    ("tasks.audio.weights", "AudioWeightsMissing"),
    ("models.torch_files", "NotACheckpoint"),  # a weights or checkpoint file that is not one
    ("tasks.demo.media", "FFmpegMissing"),
    ("flows.demo", "DemoWorldUnwritable"),  # --world-dir a file, or a folder that cannot be written
    ("tasks.features.decoder_choice", "DecoderUnavailable"),  # features.decoder=ffmpeg without ffmpeg
    ("tasks.train.run", "TrainingDataError"),
    ("tasks.train.pooling", "PoolingMismatch"),
    ("tasks.train.prepare", "FeatureSpaceMismatch"),  # a checkpoint on clip vectors of other features
    ("tasks.train.search", "NoCheckpoint"),
    ("tasks.train.search", "NoClipsToSearch"),  # no clip_pairs shard to rank (none built, or damaged)
    ("tasks.train.clip_tokens", "NoFrameRows"),  # a token tower's clips whose video has no frame rows
    ("models.text", "Word2VecFormatError"),
    ("tasks.evaluation.embedder", "NoCheckpoint"),
    ("tasks.evaluation.embedder", "InputMismatch"),
    ("tasks.evaluation.formats", "BenchmarkFileError"),
    ("tasks.evaluation.run", "NoVideos"),
    ("tasks.tasks.task_lists", "ImportFormatError"),
    ("tasks.tasks.mine", "NoArticlesFound"),  # the category walk found nothing: a mistyped --category
    ("tasks.wikihow.parser", "ParseError"),
    ("tasks.wikihow.bounded_parse", "ParserUnavailable"),  # the parsing child could not start
    ("tasks.wikihow.client", "WikiHowError"),
    ("tasks.wikihow.client", "RobotsUnavailable"),  # robots.txt still unfetchable after the retries
    ("tasks.wikihow.client", "SiteUnreachable"),  # the site never answered: down or a wrong URL
    ("tasks.howto100m.release", "ReleaseFormatError"),
    ("tasks.howto100m.caption_json", "CaptionFileError"),
    ("tasks.howto100m.import_stage", "ImportConflict"),
    ("tasks.search.plans", "ImportInProgress"),  # a crawl while an import into the same root is unfinished
    ("tasks.search.planning_claim", "CrawlPlanning"),  # two crawls numbering new videos shards at once
    ("tasks.search.search", "EverySearchFailed"),  # an outage: no search of the crawl got an answer
    ("tasks.exports.target", "ExportRefused"),  # --out in a data root, a file, a user's folder, unwritable
    ("tasks.exports.select", "NothingToExport"),
    ("tasks.exports.select", "UnknownCategory"),
    ("models.encoders", "DeviceUnavailable"),
    ("tasks.bench.query", "BenchRootInUse"),  # `bench query --data-root` at a real data root
    ("tasks.bench.howto100m", "BenchWorkdirInUse"),  # `bench import --workdir` at a real release
    ("tasks.train.checkpoints", "BadRunName"),  # --run-id / --name that is not one safe folder name
    ("tasks.train.checkpoints", "BadRunFile"),  # a run's model_card.json that is not one
)


def expected_types() -> tuple[type[BaseException], ...]:
    found = []
    for module_name, class_name in EXPECTED:
        module = sys.modules.get(module_name)
        cls = getattr(module, class_name, None) if module is not None else None
        if isinstance(cls, type) and issubclass(cls, BaseException):
            found.append(cls)
    return tuple(found)


def exception_chain(exc: BaseException, *, implicit: bool) -> Iterator[BaseException]:
    """`exc`, then what it was raised from (`raise ... from`), and so on; with `implicit`, also what was
    being handled when it was raised (`__context__`). Each exception once: a chain can loop."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        yield current
        seen.add(id(current))
        current = current.__cause__ or (current.__context__ if implicit else None)


def expected_cause(exc: BaseException) -> BaseException | None:
    """The expected failure `exc` is, or was raised from (`raise ... from`); else None.

    Only explicit causes count: an exception raised while handling an expected one (a bug in that
    handling) is not itself expected, and keeps its traceback."""
    kinds = expected_types()
    return next((e for e in exception_chain(exc, implicit=False) if isinstance(e, kinds)), None)


def prefect_api_down(exc: BaseException) -> str | None:
    """The line for a command that could not reach the configured Prefect API (a server that was stopped, a
    mistyped PREFECT_API_URL), else None. Prefect's client raises a RuntimeError from httpx's transport error
    for a request to that API; only such an error, for a URL under the configured API, is recognised."""
    httpx = sys.modules.get("httpx")
    settings = sys.modules.get("prefect.settings")
    if httpx is None or settings is None:
        return None
    api = str(settings.PREFECT_API_URL.value() or "").rstrip("/")
    if not api:
        return None
    for current in exception_chain(exc, implicit=True):
        if isinstance(current, httpx.TransportError):
            try:
                url = str(current.request.url)
            except RuntimeError:  # an error raised without its request
                url = ""
            if url.startswith(api):
                return (
                    f"Prefect API {api} not reachable ({type(current).__name__}): start the server (prefect "
                    "server start), or unset PREFECT_API_URL to let the command start a temporary one"
                )
    return None


def one_line(exc: BaseException) -> str:
    """What the user reads: the message on one line; a config error names the field."""
    advice = getattr(exc, "advice", None)
    if isinstance(advice, str):  # a halted stage: what happened and what to do
        return f"stopped: {advice}"
    errors = getattr(exc, "errors", None)
    if type(exc).__name__ == "ValidationError" and callable(errors):
        first: dict[str, Any] = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or type(exc).__name__
        return f"bad config value {where}: {first.get('msg')}"
    # A message may quote what came from elsewhere (a page, a file, a server's answer): its control
    # characters are shown as escapes, never obeyed by the terminal.
    return terminal_safe(" ".join(str(exc).split())) or type(exc).__name__


def report(raised: BaseException, cause: BaseException, verbose: bool) -> None:
    """Print the one line about `cause` on stderr; with -v, the traceback of what was raised first."""
    if verbose:
        traceback.print_exception(raised, file=sys.stderr)
    # typer checks an option's type and range (min=1) with pydantic and raises BadParameter from its
    # ValidationError: the BadParameter's own message names the option, the ValidationError's does not.
    line = raised.format_message() if isinstance(raised, typer.BadParameter) else one_line(cause)
    typer.echo(f"error: {line}", err=True)


def stdout_reader_gone() -> bool:
    """True when stdout is a pipe (or socket) whose reading end is closed: a write there fails with EPIPE.

    A BrokenPipeError alone does not say which pipe broke (a child's stdin, a socket): only this one is the
    reader being done, the others are failures to report."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), 0)  # POLLERR and POLLHUP are reported whatever is asked
        events = poller.poll(0)
    except (AttributeError, OSError, ValueError):  # no real stdout (replaced by a test's buffer, closed)
        return False
    return any(mask & (select.POLLERR | select.POLLHUP) for _, mask in events)


def _raise_broken_pipe(console: Console) -> None:
    raise BrokenPipeError(32, "the reader of stdout has gone")


def rich_raises_broken_pipe() -> None:
    """rich's consoles (tables, typer's --help) end the process with exit 1 when stdout's reader has gone
    (their `on_broken_pipe`); rich's docs say to override that hook to change it. They raise instead, so
    quiet_when_reader_gone ends every command the same way. On the class: typer makes its own consoles."""
    from rich.console import Console

    Console.on_broken_pipe = _raise_broken_pipe  # type: ignore[method-assign,assignment]


# A full disk or an exhausted quota: the user frees space, nothing in the code is wrong.
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def no_space(exc: BaseException) -> OSError | None:
    """The out-of-space OSError in `exc`'s chain (a shard, a checkpoint, stdout redirected to a full disk)."""
    chain = exception_chain(exc, implicit=True)
    return next((e for e in chain if isinstance(e, OSError) and e.errno in _NO_SPACE), None)


def _stdout_to_devnull() -> None:
    """Python flushes stdout again at exit: point it at /dev/null so that flush has nowhere to fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):  # no real stdout (a test's buffer)
        pass


@contextmanager
def quiet_when_reader_gone() -> Iterator[None]:
    """Within the block, a write to a stdout whose reader has gone ends the command with EXIT_READER_GONE,
    without a traceback. What was printed is flushed inside the block, so the interpreter's own flush at
    exit cannot fail later and print "Exception ignored ... BrokenPipeError"."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        if not stdout_reader_gone():
            raise
        _stdout_to_devnull()
        raise typer.Exit(EXIT_READER_GONE) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:
        # Out of space, wherever the write was (a shard, a checkpoint, a redirected stdout): one line, and
        # stdout emptied so the exit's own flush of what is left cannot fail again with a traceback.
        full = no_space(exc)
        if full is None:
            raise
        what = os.strerror(full.errno or errno.ENOSPC).lower()  # "no space left on device", "disk quota ..."
        where = f" writing {full.filename}" if full.filename else ""
        typer.echo(
            f"error: {what}{where}: free some space and run the same command again; finished shards are kept",
            err=True,
        )
        _stdout_to_devnull()
        raise typer.Exit(EXIT_EXPECTED) from None


# The demo's printed walk-through is what it shows people: it stays as it is, without progress lines.
QUIET_COMMANDS = frozenset({"demo"})


class HowtoGroup(TyperGroup):
    """The root command group: every subcommand runs inside `invoke`, so this is the one place that
    turns an expected failure into one line and exit 2, and a closed stdout into a quiet exit (--help and
    --version print while the context is made: `make_context` is covered too)."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        rich_raises_broken_pipe()
        with quiet_when_reader_gone():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        from tasks.interrupts import watch_stop_signals

        # The work in other threads learns of Ctrl-C and SIGTERM through this: a child ffmpeg they ended is
        # no failure, and SIGTERM ends the command as Ctrl-C does (below) instead of killing it mid-write.
        watch_stop_signals()
        with quiet_when_reader_gone():
            return self._invoke(ctx)

    def _invoke(self, ctx: Any) -> Any:
        from flows.cli_progress import shown

        try:
            # Progress is shown once, by the outermost group (a sub-app run on its own is outermost).
            if ctx.parent is not None or ctx.invoked_subcommand in QUIET_COMMANDS:
                return super().invoke(ctx)
            with shown():  # progress bars (or plain lines) for every command's long work
                return super().invoke(ctx)
        except (typer.Exit, typer.Abort):  # a deliberate exit keeps its code
            raise
        except KeyboardInterrupt:
            from tasks.interrupts import terminated as got_sigterm

            # Ctrl-C or SIGTERM: what the stages finished is kept (markers), so the same command resumes. 130
            # and 143 are what shells report for a command ended by SIGINT and SIGTERM.
            terminated = got_sigterm()
            typer.echo(
                f"error: {'stopped by SIGTERM' if terminated else 'interrupted'}; finished shards are kept: "
                "run the same command again to resume",
                err=True,
            )
            raise typer.Exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED) from None
        except Exception as exc:  # noqa: BLE001 - expected ones end here, the rest re-raise
            cause = expected_cause(exc)
            if cause is None and isinstance(exc, EOFError):
                # click takes an EOFError for Ctrl-D at a prompt and prints a bare "Aborted." (this CLI has
                # no prompts): here it is some file that ended early, a bug to show with its traceback.
                raise RuntimeError(f"unexpected end of a file or stream: {exc!r}") from exc
            verbose = bool(ctx.find_root().params.get("verbose"))
            if cause is None:
                down = prefect_api_down(exc)
                if down is None:
                    raise
                if verbose:
                    traceback.print_exception(exc, file=sys.stderr)
                typer.echo(f"error: {down}", err=True)
                raise typer.Exit(EXIT_EXPECTED) from None
            report(exc, cause, verbose)
            raise typer.Exit(EXIT_EXPECTED) from None
