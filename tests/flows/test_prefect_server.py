"""The temporary Prefect server a command starts: out of Ctrl-C's reach, and gone when the command is killed;
and Ctrl-C itself ends a command with one line and exit 130."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import typer
from typer.testing import CliRunner

from flows.cli_errors import EXIT_INTERRUPTED, HowtoGroup

# A stand-in for a `howto` command: it loads the CLI (which arranges how Prefect starts its server), has
# Prefect start the server, prints the server's pid and waits to be killed.
COMMAND = """
import sys, time
import flows.cli
from prefect.server.api.server import SubprocessASGIServer
server = SubprocessASGIServer(port=int(sys.argv[1]))
process = server._run_uvicorn_command()
print(process.pid, flush=True)
time.sleep(120)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its (dead) parent's reaper counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_the_server_runs_in_its_own_session_and_ends_when_its_command_is_killed() -> None:
    """A terminal's Ctrl-C reaches the foreground process group: the server is in a session of its own.
    A SIGKILL of the command (the OOM killer) skipped Prefect's stop at exit and left the server running."""
    command = subprocess.Popen(
        [sys.executable, "-c", COMMAND, str(_free_port())],
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    server = 0
    try:
        server = int(command.stdout.readline())  # type: ignore[union-attr]
        assert os.getsid(server) == server != os.getsid(command.pid)
        command.kill()
        command.wait(timeout=10)
        deadline = time.monotonic() + 15
        while _alive(server) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(server)
    finally:
        for pid in (command.pid, server):
            if pid and _alive(pid):
                os.killpg(pid, signal.SIGKILL)
        command.wait(timeout=10)


def test_ctrl_c_ends_a_command_with_one_line_and_exit_130() -> None:
    app = typer.Typer(cls=HowtoGroup)

    @app.command()
    def work() -> None:
        raise KeyboardInterrupt

    @app.command()
    def other() -> None:  # two commands: `work` is a subcommand, as in howto
        pass

    result = CliRunner().invoke(app, ["work"])
    assert result.exit_code == EXIT_INTERRUPTED == 130
    assert result.stderr.strip().splitlines() == [
        "error: interrupted; finished shards are kept: run the same command again to resume"
    ]
