"""What every CLI bad-input test checks: the command run in-process, and its one `error:` line (exit 2)."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner

from flows.cli import app

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
