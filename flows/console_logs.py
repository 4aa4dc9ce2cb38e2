"""Log lines shown as text on a terminal: scraped text in a log message has its control characters escaped.

Log messages carry text from the web: a yt-dlp warning quoting a video's title or a server's error page, a
shard's failure quoting a caption, an import file's bad line. Printed as it was, an ESC sequence in it was
obeyed by the terminal (ESC ]0; sets the window title, ESC [2J clears the screen, OSC 52 writes the
clipboard), a carriage return overwrote the line, and a line feed forged a log line of its own. The console
handlers are given a formatter that escapes them (`\\x1b`) and indents every line of a message after its first
(a forged line starts with spaces, never as a record does); the records themselves are left as they are for
the other handlers (the run's logs in Prefect's API).
"""

from __future__ import annotations

import copy
import logging

from flows.terminal_text import terminal_safe

# Where a message's second and later lines start: indented, so no line of a message can pass for a record of its
# own. Escaping the line feed too (`\x0a`) did that as well, but ran Prefect's own two-line messages ("Starting
# temporary server on ...", "See https://...") into one line with a literal \x0a in it on every command.
CONTINUATION = "\n    "


class TerminalSafeFormatter(logging.Formatter):
    """Formats with `inner`, the message with every control character escaped but its line feeds, which go on
    indented (CONTINUATION), then escapes what the rest holds (an exception's message in a traceback), keeping
    the traceback's own lines."""

    def __init__(self, inner: logging.Formatter | None = None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        safe = copy.copy(record)  # the other handlers (the API's) get the record as it was
        safe.msg = terminal_safe(record.getMessage(), keep_lines=True).replace("\n", CONTINUATION)
        safe.args = None
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
