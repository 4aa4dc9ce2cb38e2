"""How the CLI shows progress events (tasks/progress.py): rich bars on a terminal, plain lines otherwise.

Bars and lines go to stderr, like the log, so a command's result on stdout (JSON, tables) stays clean
when piped. A bar disappears when its work is done; without a terminal a line is printed every ~10%.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from tasks.progress import listening

PLAIN_STEPS = 10  # lines per piece of work without a terminal


class ProgressDisplay:
    """A listener for `tasks.progress.advance`: one bar (or a few plain lines) per piece of work."""

    def __init__(self, stream: TextIO, terminal: bool | None = None) -> None:
        self.stream = stream
        self.terminal = stream.isatty() if terminal is None else terminal
        self._lock = threading.Lock()
        self._bars: dict[str, TaskID] = {}
        self._printed: dict[str, int] = {}  # plain mode: the last step printed per piece of work
        self._progress: Progress | None = None
        if self.terminal:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(file=stream, force_terminal=True),
                transient=True,
                # Log lines (stderr) print above the bars; stdout stays the command's own, so a result
                # piped to another program never passes through the terminal's bar.
                redirect_stdout=False,
            )

    def __enter__(self) -> ProgressDisplay:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, what: str, done: int, total: int | None) -> None:
        with self._lock:
            if self._progress is not None:
                self._bar(self._progress, what, done, total)
            else:
                self._line(what, done, total)

    def _bar(self, progress: Progress, what: str, done: int, total: int | None) -> None:
        bar = self._bars.get(what)
        if bar is None:
            bar = self._bars[what] = progress.add_task(what, total=total)
        progress.update(bar, completed=done, total=total)
        if total is not None and done >= total:
            progress.remove_task(bar)  # finished work makes room for the next
            del self._bars[what]

    def _line(self, what: str, done: int, total: int | None) -> None:
        if total is None or total <= 0:
            return  # nothing to measure against (an empty stage prints nothing)
        step = done * PLAIN_STEPS // total
        if done >= total or step > self._printed.get(what, 0):
            self._printed[what] = step
            print(f"progress: {what} {done}/{total}", file=self.stream, flush=True)
        if done >= total:
            self._printed.pop(what, None)


@contextmanager
def shown(stream: TextIO | None = None) -> Iterator[ProgressDisplay]:
    """Show every progress event while the block runs (the CLI wraps each command in this)."""
    with ProgressDisplay(stream or sys.stderr) as display, listening(display):
        yield display
