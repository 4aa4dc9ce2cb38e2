"""A real Prefect server, work pools, `prefect deploy --all` from prefect.yaml, a deployment run picked up
by a worker, and the collected data checked in DuckDB. Every process started here is stopped."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flows.demo import demo_pipeline_config
from storage.catalog import query

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Processes:
    """Processes started in their own process group, all killed (group-wide) at the end."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        handle = log.open("wb")
        proc = subprocess.Popen(
            args, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.time() + 20
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.fixture()
def prefect_server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Processes]]:
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        {
            "PREFECT_HOME": str(tmp_path / "prefect-home"),
            "PREFECT_API_URL": api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_UI_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "INFO",
            "HOWTO_PROJECT_DIR": str(ROOT),
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
        }
    )
    procs = Processes()
    try:
        procs.start(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env,
            tmp_path / "server.log",
        )
        deadline = time.time() + 120
        while True:
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                pytest.fail("prefect server did not start:\n" + (tmp_path / "server.log").read_text()[-3000:])
            time.sleep(0.5)
        yield api, env, procs
    finally:
        procs.stop_all()


def _prefect(env: dict[str, str], *args: str, timeout: int = 300) -> str:
    out = subprocess.run(
        [str(BIN / "prefect"), "--no-prompt", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,
    )
    assert out.returncode == 0, (
        f"prefect {' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    )
    return out.stdout


@pytest.mark.slow
def test_deploy_all_and_run_collection(prefect_server, demo_site, tmp_path: Path) -> None:
    api, env, procs = prefect_server
    for pool in ("cpu", "gpu"):
        _prefect(env, "work-pool", "create", pool, "--type", "process")
    _prefect(env, "deploy", "--all")
    names = {d["name"] for d in httpx.post(f"{api}/deployments/filter", json={}, timeout=10).json()}
    assert {
        "full",
        "collect",
        "mine-tasks",
        "search-videos",
        "fetch-captions",
        "extract-features",
        "train-embedding",
        "weekly",
    } <= names
    weekly = httpx.post(
        f"{api}/deployments/filter", json={"deployments": {"name": {"any_": ["weekly"]}}}, timeout=10
    ).json()[0]
    assert weekly["schedules"][0]["schedule"]["cron"] == "0 3 * * 1"

    data_root = tmp_path / "data"
    cfg = demo_pipeline_config(demo_site.url)
    params = {
        "cfg": cfg.model_dump(mode="json"),
        "data_root": str(data_root),
        "stages": ["tasks", "search", "captions"],
    }
    out = _prefect(env, "deployment", "run", "pipeline/collect", "--params", json.dumps(params))
    flow_run_id = next(line.split()[-1] for line in out.splitlines() if "UUID" in line)

    worker = procs.start(
        [str(BIN / "prefect"), "worker", "start", "--pool", "cpu", "--run-once"], env, tmp_path / "worker.log"
    )
    deadline = time.time() + 480
    state = None
    while time.time() < deadline:
        state = httpx.get(f"{api}/flow_runs/{flow_run_id}", timeout=10).json()["state"]["type"]
        if state in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
            break
        time.sleep(2)
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert state == "COMPLETED", f"flow run ended {state}:\n{log[-5000:]}"
    worker.wait(timeout=60)

    articles = demo_site.world.articles
    visual_titles = {a.title.lower() for a in articles if a.category_path[0] != "Relationships"}
    kept_tasks = query("SELECT count(*) FROM tasks WHERE keep", str(data_root)).rows[0][0]
    assert kept_tasks == len(visual_titles)
    videos_kept = query("SELECT count(*) FROM video_catalog WHERE keep", str(data_root)).rows[0][0]
    clips = query("SELECT count(*), count(DISTINCT video_id) FROM clips", str(data_root)).rows[0]
    assert videos_kept > 0 and clips[0] > 0 and clips[1] == videos_kept
    shutil.rmtree(data_root)
