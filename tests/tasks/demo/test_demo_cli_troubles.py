"""`howto demo-site serve --trouble NAME=VALUE`: the served site has the faults; bad switches exit 2."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tasks.demo.troubles import switch_names
from tasks.demo.world import World

CLI = [sys.executable, "-m", "flows.cli", "demo-site"]  # the real `howto demo-site` entry point
SUB_APP = [sys.executable, "-m", "flows.cli_demo_site"]  # same commands without importing every stage


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_with_server_error_answers_503_for_that_id(demo_world: World) -> None:
    sick, well = demo_world.usable[:2]
    port = _free_port()
    cmd = [*CLI, "serve", "--world-dir", str(demo_world.cache_dir), "--port", str(port),
           "--trouble", f"server_error={sick.id}", "--trouble", "retry_after_s=3"]  # fmt: skip
    # Own process group: the kill in `finally` takes down anything the CLI started, even on a failed assert.
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url == f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/watch", params={"v": sick.id}, timeout=10).status_code == 503
        page = httpx.get(f"{url}/watch", params={"v": well.id}, timeout=10)
        assert page.status_code == 200 and "ytInitialPlayerResponse" in page.text
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.mark.parametrize(
    ("switch", "named"),
    [
        ("nonsense=1", "'nonsense'"),
        ("server_error", "'server_error'"),
        ("too_many_requests=lots", "too_many_requests"),
    ],
)
def test_bad_switch_is_one_line_exit_2_before_building(switch: str, named: str, tmp_path: Path) -> None:
    # An empty world dir: were the world built first, this would take a minute instead of failing at once.
    bad = subprocess.run([*SUB_APP, "serve", "--world-dir", str(tmp_path), "--trouble", switch],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and bad.stdout == ""
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0]
    assert "server_error" in lines[0] and "bot_check" in lines[0]  # the allowed names are listed


def test_help_lists_every_switch() -> None:
    out = subprocess.run([*SUB_APP, "serve", "--help"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "COLUMNS": "400", "TERM": "dumb", "NO_COLOR": "1"})  # fmt: skip
    assert out.returncode == 0
    text = " ".join(out.stdout.split())  # rich wraps the help text; compare with the wrapping undone
    assert "--trouble" in text and all(name in text for name in switch_names())
