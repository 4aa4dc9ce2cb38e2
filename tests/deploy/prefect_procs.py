"""A real Prefect server and workers for the deployment tests: each in its own process group, all stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.cpu import worker_threads

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


STOP_GRACE_S = 8.0


@dataclass
class Processes:
    """Processes started in their own process group, all killed (group-wide) by stop_all."""

    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as handle:
            proc = subprocess.Popen(
                args, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        """SIGTERM each process group, then SIGKILL what is left. A process worker starts each flow run in
        a session of its own, so the groups of every descendant are stopped too, not only the worker's."""
        groups: list[int] = []
        for proc in reversed(self.procs):
            for pid in [proc.pid, *_descendants(proc.pid)]:
                with contextlib.suppress(ProcessLookupError):
                    pgid = os.getpgid(pid)
                    if pgid not in groups and pgid != os.getpgid(0):
                        groups.append(pgid)
        _signal_groups(groups, signal.SIGTERM)
        # Idle workers and the server stop in about a second; on a loaded CI machine some process (a worker
        # winding down its flow-run subprocess) has been seen to sit out the whole grace. Whatever is
        # left is killed: a teardown has nothing left to save.
        deadline = time.time() + STOP_GRACE_S
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pass
        _signal_groups(groups, signal.SIGKILL)
        for proc in self.procs:
            proc.wait(timeout=10)
        self.procs.clear()


def _signal_groups(groups: list[int], sig: signal.Signals) -> None:
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (read from /proc: children may have left its process group)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class Server:
    """A started server: its API URL, the environment its clients and workers use, and a log folder."""

    api: str
    env: dict[str, str]
    logs: Path

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.post(f"{self.api}{path}", json=body or {}, timeout=30)
        response.raise_for_status()
        return response.json()

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.api}{path}", timeout=30)
        response.raise_for_status()
        return response.json()

    def worker(self, procs: Processes, pool: str, log_name: str, *extra: str) -> subprocess.Popen[bytes]:
        return procs.start([str(BIN / "prefect"), "worker", "start", "--pool", pool, *extra], self.env,
                           self.logs / log_name)  # fmt: skip

    def prefect(self, *args: str, timeout: int = 300) -> str:
        return run_checked([str(BIN / "prefect"), "--no-prompt", *args], self.env, timeout)


def run_checked(args: list[str], env: dict[str, str], timeout: int = 300) -> str:
    out = subprocess.run(
        args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, start_new_session=True
    )
    assert out.returncode == 0, f"{' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


def start_server(procs: Processes, logs: Path) -> Server:
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "HOWTO_DATA_ROOT"))}
    env.update(
        {
            "PREFECT_HOME": str(logs / "prefect-home"),
            "PREFECT_API_URL": api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_UI_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "INFO",
            # Workers look for scheduled runs every second instead of every 10 (the chain has three hops).
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "1",
            # Flow runs get this pytest worker's share of the cores (see tests/cpu.py): more OpenMP threads
            # would spin at barriers while the other worker holds the core.
            "OMP_NUM_THREADS": str(worker_threads()),
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(ROOT),
        }
    )
    procs.start([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)], env,
                logs / "server.log")  # fmt: skip
    deadline = time.time() + 180
    while True:
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return Server(api, env, logs)
        except httpx.HTTPError:
            pass
        if time.time() > deadline:
            raise AssertionError(
                "prefect server did not start:\n" + (logs / "server.log").read_text()[-3000:]
            )
        time.sleep(0.5)


def flow_run_id(deployment_run_output: str) -> str:
    return next(line.split()[-1] for line in deployment_run_output.splitlines() if "UUID" in line)


def wait_for(check: Any, timeout_s: float, what: str, logs: list[Path]) -> Any:
    """Poll `check` (returns a value when done, None while not) until it answers; fail with the logs."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = check()
        if value is not None:
            return value
        time.sleep(2)
    tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in logs if p.exists())
    raise AssertionError(f"timed out waiting for {what}\n{tails}")
