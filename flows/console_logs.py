"""Log lines shown as text on a terminal: scraped text in a log message has its control characters escaped.

Log messages carry text from the web: a yt-dlp warning quoting a video's title or a server's error page, a
shard's failure quoting a caption, an import file's bad line. Printed as it was, an ESC sequence in it was
obeyed by the terminal (ESC ]0; sets the window title, ESC [2J clears the screen, OSC 52 writes the
clipboard), a carriage return overwrote the line, and a line feed forged a log line of its own. The console
handlers are given a formatter that escapes them (`\\x1b`); the records themselves are left as they are for
the other handlers (the run's logs in Prefect's API).
"""

from __future__ import annotations

import copy
import logging

from flows.terminal_text import terminal_safe


class TerminalSafeFormatter(logging.Formatter):
    """Formats with `inner`, the message with every control character escaped (its line feeds too: one
    record, one line), then escapes what the rest holds (an exception's message in a traceback), keeping
    the traceback's own lines."""

    def __init__(self, inner: logging.Formatter | None = None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        safe = copy.copy(record)  # the other handlers (the API's) get the record as it was
        safe.msg, safe.args = terminal_safe(record.getMessage()), None
        return terminal_safe(self.inner.format(safe), keep_lines=True)


def guard_console_logs() -> None:
    """Give every stream handler configured so far (on the root logger and any named logger: ours, Prefect's
    console handler, a log file's, which is read on a terminal too) the escaping formatter, once. Called where
    our logging is set up: the CLI's `setup_logging`, and the import of the `flows` package, which in a
    worker's flow-run process comes after Prefect has configured its handlers."""
    loggers = [logging.getLogger()] + [
        lg for lg in list(logging.Logger.manager.loggerDict.values()) if isinstance(lg, logging.Logger)
    ]
    for logger in loggers:
        for handler in list(logger.handlers):
            guarded = isinstance(handler.formatter, TerminalSafeFormatter)
            if isinstance(handler, logging.StreamHandler) and not guarded:
                handler.setFormatter(TerminalSafeFormatter(handler.formatter))
