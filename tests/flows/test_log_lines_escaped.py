"""Scraped text in a log line reaches the terminal as text: its ESC sequences and carriage returns are shown as
escapes (\\x1b), and a line feed goes on indented (no line of a message passes for a record), through the console handler of the `howto` CLI and through Prefect's own in a
worker's flow-run process. Each process is a real one: logging is configured once per process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
# A video title (or a server's error message) as a hostile site sends it: sets the window title, clears the
# screen, then returns to the line start and forges a log line of its own.
HOSTILE = "Fix a Bike\x1b]0;pwned\x07\x1b[2J\r\n12:00:00 ERROR forged line"
SHOWN = r"Fix a Bike\x1b]0;pwned\x07\x1b[2J\x0d"  # the message's first line, as shown
FORGED = "    12:00:00 ERROR forged line"  # its second line: indented, not a record of its own
# A two-line message of our own (Prefect's "Starting temporary server on ...\nSee https://..."): both lines shown
# as lines, the second indented, never run into one with a literal \x0a.
TWO_LINES = "Starting temporary server on http://127.0.0.1:8080\nSee https://docs.prefect.io/ for more"

# What `howto` does: its setup_logging first; the yt-dlp warnings come through the client's YtdlpLog, a shard's
# failure through the flow runner's logger (with -v, its traceback quoting the exception's message).
CLI = """
import logging, sys
from flows.cli_common import setup_logging
setup_logging(verbose=sys.argv[2] == "-v")
from tasks.youtube.ydl import YtdlpLog
YtdlpLog().warning(sys.argv[1])
logging.getLogger("flows.runtime").warning(TWO_LINES)
try:
    raise RuntimeError(sys.argv[1])
except RuntimeError as exc:
    logging.getLogger("flows.runtime").error("search: shard 0 failed: %s", exc, exc_info=exc)
""".replace("TWO_LINES", repr(TWO_LINES))

# A worker's flow-run process: Prefect's engine imports its flow engine (which configures Prefect's logging:
# its console handler on the root logger), then loads the deployment's flow module; or a script that imports a
# flow module first. get_run_logger() logs to the prefect.flow_runs logger.
ENGINE_FIRST = "from prefect.flow_engine import load_flow\n"
FLOW_RUN = """
import logging, sys
import flows.search_videos
from tasks.youtube.ydl import YtdlpLog
YtdlpLog().warning(sys.argv[1])
run_logger = logging.LoggerAdapter(logging.getLogger("prefect.flow_runs"), {"flow_run_name": "tidy-fox"})
run_logger.warning("probing %s", sys.argv[1])  # get_run_logger()'s records, as Prefect's adapter makes them
"""


@pytest.fixture(scope="session", autouse=True)
def prefect_server() -> Iterator[None]:
    # Overrides tests/flows/conftest.py's: nothing here runs a flow.
    yield


def _line_after(lines: list[str], marker: str) -> tuple[str, str]:
    """The first line holding `marker`, and the line after it."""
    at = next(i for i, line in enumerate(lines) if marker in line)
    return lines[at], lines[at + 1]


def _stderr_of(script: str, tmp_path: Path, *args: str) -> str:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_LOGGING_EXTRA_LOGGERS": "tasks,models,storage,flows",  # as prefect.yaml's deployments set it
        "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
        "PREFECT_LOGGING_LEVEL": "INFO",
    }
    done = subprocess.run(
        [sys.executable, "-c", script, HOSTILE, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


@pytest.mark.parametrize("verbose", [False, True], ids=["plain", "-v"])
def test_the_cli_console_shows_scraped_text_in_log_lines_as_text(tmp_path: Path, verbose: bool) -> None:
    err = _stderr_of(CLI, tmp_path, "-v" if verbose else "")
    assert "\x1b" not in err and "\x07" not in err and "\r" not in err
    lines = err.splitlines()
    first, second = _line_after(lines, "yt-dlp:")
    assert first.endswith(f"yt-dlp: {SHOWN}") and second == FORGED
    first, second = _line_after(lines, "shard 0 failed")
    assert first.endswith(f"shard 0 failed: {SHOWN}") and second == FORGED
    first, second = _line_after(lines, "Starting temporary server")
    assert (
        first.endswith("on http://127.0.0.1:8080") and second == "    See https://docs.prefect.io/ for more"
    )
    assert "\\x0a" not in err
    if not verbose:  # three records of two lines each
        assert len(lines) == 6 and not any(line.startswith("12:00:00 ERROR forged") for line in lines)
    else:  # the traceback keeps its lines (an exception's message may span some); its controls are escaped
        assert "Traceback (most recent call last):" in lines
        assert r"RuntimeError: Fix a Bike\x1b]0;pwned\x07\x1b[2J\x0d" in lines


@pytest.mark.parametrize("engine_first", [True, False], ids=["worker", "script"])
def test_prefects_console_in_a_flow_run_process_shows_it_as_text(tmp_path: Path, engine_first: bool) -> None:
    err = _stderr_of((ENGINE_FIRST if engine_first else "") + FLOW_RUN, tmp_path)
    assert "\x1b" not in err and "\x07" not in err and "\r" not in err
    lines = err.splitlines()
    first, second = _line_after(lines, "yt-dlp:")
    assert first.endswith(f"yt-dlp: {SHOWN}") and second == FORGED
    first, second = _line_after(lines, "probing")
    assert first.endswith(f"probing {SHOWN}") and second == FORGED
    assert not any(line.startswith("12:00:00 ERROR forged") for line in lines)
