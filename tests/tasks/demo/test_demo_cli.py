"""`howto demo-site serve` prints its URL, serves, and stops cleanly on Ctrl-C; bad input exits 2."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tasks.demo.site import DemoSite
from tasks.demo.world import World

CLI = [sys.executable, "-m", "flows.cli", "demo-site"]  # the real `howto demo-site` entry point
SUB_APP = [sys.executable, "-m", "flows.cli_demo_site"]  # same commands without importing every stage


def test_serve_prints_url_serves_and_stops_on_ctrl_c(demo_world: World) -> None:
    proc = subprocess.Popen([*CLI, "serve", "--world-dir", str(demo_world.cache_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert "User-agent" in httpx.get(f"{url}/robots.txt", timeout=10).text
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0  # generous: a loaded CI machine, not a slow stop
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    try:
        httpx.get(f"{url}/robots.txt", timeout=2)
        raise AssertionError("the site still answers after Ctrl-C")
    except httpx.ConnectError:
        pass


def test_busy_port_and_bad_world_dir_are_one_line_errors(demo_site: DemoSite, tmp_path: Path) -> None:
    port = demo_site.url.rsplit(":", 1)[1]
    busy = subprocess.run([*SUB_APP, "serve", "--port", port, "--world-dir", str(demo_site.world.cache_dir)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert busy.returncode == 2 and busy.stderr.strip().splitlines()[-1].startswith(
        f"error: 127.0.0.1:{port}: "
    )
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    bad = subprocess.run(
        [*SUB_APP, "build", "--world-dir", str(blocker / "sub")], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith(f"error: {blocker / 'sub'}")
