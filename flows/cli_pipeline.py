"""CLI: `howto demo`, `howto pipeline`, `howto recrawl`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from flows.cli_common import DataRootOption, fail
from flows.pipeline_config import ALL_STAGES, PipelineConfig
from flows.runner_config import RunnerConfig
from storage.layout import DataRoot

StagesOption = Annotated[
    list[str] | None,
    typer.Option("--stage", help=f"Run only these stages (repeatable): {', '.join(ALL_STAGES)}."),
]


def _stages(values: list[str] | None) -> list[str]:
    chosen = values or list(ALL_STAGES)
    bad = [s for s in chosen if s not in ALL_STAGES]
    if bad:
        fail(f"unknown stage(s) {', '.join(bad)}; choose from {', '.join(ALL_STAGES)}")
    return chosen


def _load_config(path: Path | None) -> PipelineConfig:
    if path is None:
        return PipelineConfig()
    try:
        return PipelineConfig.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        fail(f"{path}: {exc.strerror or exc}")
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(
            f"{path}: {'.'.join(str(p) for p in first['loc'])}: {first['msg']} ({exc.error_count()} problem(s))"
        )
    except UnicodeDecodeError:
        fail(f"{path}: not UTF-8 text")


def _runner(task_runner: str, dask_address: str | None, workers: int) -> RunnerConfig:
    if task_runner not in ("threads", "dask"):
        fail(f"--task-runner must be threads or dask, not {task_runner!r}")
    return RunnerConfig(task_runner=task_runner, dask_address=dask_address, max_workers=workers)  # type: ignore[arg-type]


def demo_command(
    data_root: DataRootOption = None,
    site_url: Annotated[
        str | None, typer.Option("--site-url", help="Use a demo site that is already running.")
    ] = None,
    world_dir: Annotated[Path | None, typer.Option("--world-dir", help="Demo world cache directory.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Demo world seed.")] = 0,
    stages: StagesOption = None,
) -> None:
    """Build the demo world, serve it on 127.0.0.1, run the whole pipeline on it, print a summary."""
    from flows.demo import report_lines, run_demo

    root = DataRoot.from_any(data_root)
    summaries = run_demo(
        root.url, site_url=site_url, world_dir=world_dir, seed=seed, stages=_stages(stages), log=typer.echo
    )  # type: ignore[arg-type]
    for line in report_lines(root, summaries):
        typer.echo(line)


def pipeline_command(
    config: Annotated[
        Path | None, typer.Option("--config", help="PipelineConfig as JSON (see --print-config).")
    ] = None,
    data_root: DataRootOption = None,
    stages: StagesOption = None,
    task_runner: Annotated[str, typer.Option("--task-runner", help="threads or dask.")] = "threads",
    dask_address: Annotated[str | None, typer.Option("--dask-address", help="tcp://scheduler:8786")] = None,
    workers: Annotated[int, typer.Option("--workers", help="Shard tasks at once.", min=1)] = 2,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the config as JSON and exit.")
    ] = False,
) -> None:
    """Run the pipeline (or some stages) with a config file; finished shards are skipped."""
    from flows.pipeline import pipeline

    cfg = _load_config(config)
    cfg = cfg.model_copy(update={"runner": _runner(task_runner, dask_address, workers)})
    if print_config:
        typer.echo(cfg.model_dump_json(indent=1))
        return
    summaries = pipeline(cfg=cfg, data_root=DataRoot.from_any(data_root).url, stages=_stages(stages))  # type: ignore[arg-type]
    typer.echo(json.dumps(summaries, indent=1, default=str))


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
    app.command("pipeline")(pipeline_command)
