"""Options and config values refused up front in one line (exit 2, naming the option), and failures that
end quickly instead of being retried for minutes."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from flows.cli import app
from flows.cli_errors import expected_cause
from tasks.wikihow.client import RobotsUnavailable, SiteUnreachable

runner = CliRunner()


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


def one_error_line(result: Any, *needles: str) -> str:
    """Exit 2 and exactly one stderr line, `error: ...`, holding every needle; no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- site URLs ----------------------------------------------------------------------------------------


def test_site_urls_are_checked_before_any_request(tmp_path: Path) -> None:
    root = str(tmp_path / "data")
    for bad in ("notaurl", "ftp://127.0.0.1/", "http://", "http://127.0.0.1:0"):
        one_error_line(invoke("tasks", "mine", "--base-url", bad, "--data-root", root), "--base-url", repr(bad))
        one_error_line(
            invoke("search-videos", "--demo-url", bad, "--data-root", root), "--demo-url", "http(s) URL"
        )
    one_error_line(
        invoke("pipeline", "--stage", "tasks", "--set", "tasks.base_url=notaurl", "--data-root", root),
        "tasks.base_url",
        "http(s) URL",
    )


def test_robots_and_unreachable_sites_are_expected_failures() -> None:
    assert expected_cause(RobotsUnavailable("HTTP 503")) is not None
    assert expected_cause(SiteUnreachable("http://127.0.0.1:9", OSError("refused"))) is not None


def test_mining_a_site_that_refuses_the_first_connection_fails_fast(tmp_path: Path) -> None:
    port = closed_port()
    started = time.monotonic()
    result = invoke("tasks", "mine", "--base-url", f"http://127.0.0.1:{port}", "--data-root", str(tmp_path))
    elapsed = time.monotonic() - started
    assert result.exit_code == 2 and "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot connect to http://127.0.0.1:{port} "), result.stderr
    assert elapsed < 60, elapsed  # no back-off, no Prefect retry (they took 2 min 19 s)
