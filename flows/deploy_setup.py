"""What `howto deploy` does against a Prefect server: work pools, the `gpu` limit, then `prefect deploy --all`.

Every step reads what exists first and only creates or corrects what differs, so a second run leaves the
server as the first one did (prefect deploy itself upserts deployments and replaces their triggers).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tasks.gpu_limit import GPU_LIMIT

POOLS = ("cpu", "gpu")
POOL_TYPE = "process"


class DeployProblem(RuntimeError):
    """The server is unreachable, a pool has another type, or `prefect deploy` failed; one line says which."""


@dataclass(frozen=True)
class Step:
    """One thing `howto deploy` looked at and what it did: created, updated or kept."""

    what: str
    action: str


def api_url() -> str:
    """The Prefect API this process talks to; a deployment needs a real server, never an ephemeral one."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise DeployProblem(
            "PREFECT_API_URL is not set: start a server (prefect server start) and "
            "export PREFECT_API_URL=http://HOST:4200/api, or `prefect cloud login`"
        )
    import httpx

    try:
        httpx.get(f"{str(url).rstrip('/')}/health", timeout=5.0).raise_for_status()
    except httpx.HTTPError as exc:
        raise DeployProblem(
            f"Prefect API {url} not reachable ({type(exc).__name__}): start the server"
        ) from None
    return str(url)


def ensure_pools(names: tuple[str, ...] = POOLS) -> list[Step]:
    """Each pool as a process pool; an existing pool of another type is an error, never replaced."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    steps = []
    with get_client(sync_client=True) as client:
        for name in names:
            try:
                pool = client.read_work_pool(name)
            except ObjectNotFound:
                client.create_work_pool(WorkPoolCreate(name=name, type=POOL_TYPE))
                steps.append(Step(f"work pool {name} ({POOL_TYPE})", "created"))
                continue
            if pool.type != POOL_TYPE:
                raise DeployProblem(
                    f"work pool {name!r} exists with type {pool.type!r}; prefect.yaml needs a "
                    f"{POOL_TYPE!r} pool (delete it or rename it)"
                )
            steps.append(Step(f"work pool {name} ({POOL_TYPE})", "kept"))
    return steps


def ensure_gpu_limit(slots: int, name: str = GPU_LIMIT) -> Step:
    """The global concurrency limit GPU stages hold a slot of: `slots` GPUs in all, active."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectNotFound

    if slots < 1:
        raise DeployProblem(f"--gpu-slots must be at least 1, got {slots}")
    with get_client(sync_client=True) as client:
        try:
            limit = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=name, limit=slots, active=True)
            )
            return Step(f"concurrency limit {name} = {slots}", "created")
        if limit.limit == slots and limit.active:
            return Step(f"concurrency limit {name} = {slots}", "kept")
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=slots, active=True))
        return Step(f"concurrency limit {name} = {slots}", f"updated (was {limit.limit})")


def deploy_env(project_dir: Path, data_root: str) -> dict[str, str]:
    """The environment `prefect deploy` reads prefect.yaml's `{{ $VAR }}` values from."""
    return {**os.environ, "HOWTO_PROJECT_DIR": str(project_dir), "HOWTO_DATA_ROOT": data_root}


def run_prefect_deploy(project_dir: Path, data_root: str) -> Step:
    """`prefect deploy --all` from the project directory (prefect.yaml there) with the job variables' values."""
    if not (project_dir / "prefect.yaml").is_file():
        raise DeployProblem(f"{project_dir / 'prefect.yaml'}: not found (--project-dir is the checkout)")
    prefect = Path(sys.executable).with_name("prefect")
    command = [str(prefect) if prefect.exists() else "prefect", "--no-prompt", "deploy", "--all"]
    out = subprocess.run(
        command,
        cwd=project_dir,
        env=deploy_env(project_dir, data_root),
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        lines = [line for line in (out.stderr + out.stdout).splitlines() if line.strip()]
        raise DeployProblem(f"prefect deploy --all failed: {lines[-1] if lines else out.returncode}")
    return Step(f"deployments from {project_dir / 'prefect.yaml'} (data root {data_root})", "deployed")
