"""`howto deploy`: work pools, the `gpu` limit and every deployment of prefect.yaml, idempotently."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from flows.cli_common import fail
from flows.deploy_setup import DeployProblem, api_url, ensure_gpu_limit, ensure_pools, run_prefect_deploy
from storage.layout import DATA_ROOT_ENV, DataRoot

PROJECT_DIR = Path(__file__).resolve().parents[1]


def deploy_command(
    data_root: Annotated[
        str | None,
        typer.Option(
            "--data-root",
            help="Data root every deployment's workers use (job variable HOWTO_DATA_ROOT): an s3:// URL "
            "or a path all workers see. Default $HOWTO_DATA_ROOT, else ./data of the project directory.",
        ),
    ] = None,
    gpu_slots: Annotated[
        int,
        typer.Option(
            "--gpu-slots", min=1, help="Size of the `gpu` concurrency limit: GPUs over all machines."
        ),
    ] = 1,
    project_dir: Annotated[
        Path,
        typer.Option("--project-dir", help="The checkout workers run the flows from (holds prefect.yaml)."),
    ] = PROJECT_DIR,
) -> None:
    """Create the cpu and gpu process pools and the `gpu` limit if missing, then `prefect deploy --all`."""
    project = project_dir.resolve()
    # A relative root would be resolved on each worker's machine: make it absolute here, where it was meant.
    root = DataRoot.from_any(data_root or os.environ.get(DATA_ROOT_ENV) or str(project / "data")).url
    try:
        typer.echo(f"Prefect API: {api_url()}")
        steps = [*ensure_pools(), ensure_gpu_limit(gpu_slots), run_prefect_deploy(project, root)]
    except DeployProblem as exc:
        fail(str(exc))
    for step in steps:
        typer.echo(f"{step.action:>8}  {step.what}")
    typer.echo("next: prefect worker start --pool cpu (and --pool gpu on GPU machines); "
               "prefect deployment run 'pipeline/collect'")  # fmt: skip


def register(app: typer.Typer) -> None:
    app.command("deploy")(deploy_command)
