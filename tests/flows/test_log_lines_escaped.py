"""Scraped text in a log line reaches the terminal as text: its ESC sequences, carriage returns and line feeds
are shown as escapes (\\x1b), through the console handler of the `howto` CLI and through Prefect's own in a
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
SHOWN = r"Fix a Bike\x1b]0;pwned\x07\x1b[2J\x0d\x0a12:00:00 ERROR forged line"

# What `howto` does: its setup_logging first; the yt-dlp warnings come through the client's YtdlpLog, a shard's
# failure through the flow runner's logger (with -v, its traceback quoting the exception's message).
CLI = """
import logging, sys
from flows.cli_common import setup_logging
setup_logging(verbose=sys.argv[2] == "-v")
from tasks.youtube.ydl import YtdlpLog
YtdlpLog().warning(sys.argv[1])
try:
    raise RuntimeError(sys.argv[1])
except RuntimeError as exc:
    logging.getLogger("flows.runtime").error("search: shard 0 failed: %s", exc, exc_info=exc)
"""

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
    assert [line for line in lines if "yt-dlp:" in line][0].endswith(f"yt-dlp: {SHOWN}")
    assert [line for line in lines if "shard 0 failed" in line][0].endswith(f"shard 0 failed: {SHOWN}")
    if not verbose:  # one record, one line
        assert len(lines) == 2 and not any(line.startswith("12:00:00 ERROR forged") for line in lines)
    else:  # the traceback keeps its lines (an exception's message may span some); its controls are escaped
        assert "Traceback (most recent call last):" in lines
        assert r"RuntimeError: Fix a Bike\x1b]0;pwned\x07\x1b[2J\x0d" in lines


@pytest.mark.parametrize("engine_first", [True, False], ids=["worker", "script"])
def test_prefects_console_in_a_flow_run_process_shows_it_as_text(tmp_path: Path, engine_first: bool) -> None:
    err = _stderr_of((ENGINE_FIRST if engine_first else "") + FLOW_RUN, tmp_path)
    assert "\x1b" not in err and "\x07" not in err and "\r" not in err
    lines = err.splitlines()
    assert [line for line in lines if "yt-dlp:" in line][0].endswith(f"yt-dlp: {SHOWN}")
    assert [line for line in lines if "probing" in line][0].endswith(f"probing {SHOWN}")
    assert not any(line.startswith("12:00:00 ERROR forged") for line in lines)
