"""A reader that closes stdout early (`howto stats | head -1`): the command stops quietly with exit 141."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.cli_errors import EXIT_READER_GONE
from tests.storage.catalog_data import build_root


@pytest.fixture(scope="session", autouse=True)
def prefect_server() -> Iterator[None]:
    # Overrides tests/flows/conftest.py's: nothing here runs a flow.
    yield


def _reader_gone_at_once(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `howto ARGS` with stdout a pipe whose reading end is closed before the command writes anything
    (it takes a second to start), as when `head` has already exited."""
    exe = Path(sys.executable).parent / "howto"
    proc = subprocess.Popen([str(exe), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    stderr = proc.stderr.read()
    return subprocess.CompletedProcess(proc.args, proc.wait(timeout=120), None, stderr)


@pytest.mark.parametrize(
    "args",
    [
        ["stats"],  # rich's console
        ["query", "SELECT * FROM clips"],  # a rich table
        ["query", "SELECT * FROM clips", "--format", "csv"],  # the csv module on sys.stdout
        ["query", "SELECT * FROM clips", "--format", "json"],  # typer.echo
        ["--version"],  # printed while the command line is parsed, before any command runs
        ["stats", "--help"],
    ],
    ids=["stats", "query-table", "query-csv", "query-json", "version", "help"],
)
def test_a_closed_stdout_ends_the_command_quietly(args: list[str], tmp_path: Path) -> None:
    root = build_root(tmp_path)
    data = [] if "--version" in args or "--help" in args else ["--data-root", root.url]
    done = _reader_gone_at_once(*args, *data)
    assert done.returncode == EXIT_READER_GONE == 141
    assert done.stderr == ""  # no traceback, no "Exception ignored ... BrokenPipeError"


def test_other_failures_keep_their_exit_with_stdout_closed(tmp_path: Path) -> None:
    """A closed stdout does not hide a real error: a bad query still says why on stderr, exit 2."""
    done = _reader_gone_at_once(
        "query", "SELECT * FROM no_such_view", "--data-root", build_root(tmp_path).url
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize(
    "args",
    [["query", "SELECT * FROM clips"], ["query", "SELECT 1", "--format", "json"], ["--version"]],
    ids=["query-table", "query-json", "version"],
)
def test_a_stdout_on_a_full_disk_is_one_line(args: list[str], tmp_path: Path) -> None:
    """`howto query ... > file` on a full disk (/dev/full fails every write with ENOSPC): one line, exit 2,
    and no second failure from the exit's own flush of stdout."""
    data = [] if "--version" in args else ["--data-root", build_root(tmp_path).url]
    exe = Path(sys.executable).parent / "howto"
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [str(exe), *args, *data], stdout=full, stderr=subprocess.PIPE, text=True, timeout=120
        )
    assert done.returncode == 2
    assert done.stderr.startswith("error: no space left on device: free some space")
    assert (
        done.stderr.count("\n") == 1
        and "Traceback" not in done.stderr
        and "Exception ignored" not in done.stderr
    )
