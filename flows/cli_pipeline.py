"""CLI: `howto demo`, `howto pipeline`, `howto recrawl`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from flows.cli_access import demo_url_option
from flows.cli_common import (
    DataRootOption,
    LossOption,
    TextOption,
    checked_by,
    choice_option,
    fail,
    field_choices,
    require_device,
)
from flows.config_file import Override, parse_set, resolve, to_yaml
from flows.pipeline_config import ALL_STAGES, RECRAWL_DEFAULT_STAGES, PipelineConfig, Stage
from flows.runner_config import RunnerConfig
from storage.layout import DataRoot
from tasks.config_types import check_http_url

StagesOption = Annotated[
    list[str] | None, choice_option("--stage", ALL_STAGES, "Run only these stages (repeatable); default all.")
]
RUNNERS = field_choices(RunnerConfig, "task_runner")


def _stages(values: list[str] | None) -> list[Stage]:
    # The option's parser has checked every value against ALL_STAGES.
    return [s for s in ALL_STAGES if s in values] if values else list(ALL_STAGES)


def demo_command(
    data_root: DataRootOption = None,
    site_url: Annotated[
        str | None,
        typer.Option(
            "--site-url",
            help="Use a demo site that is already running.",
            callback=checked_by("--site-url", check_http_url),
        ),
    ] = None,
    world_dir: Annotated[Path | None, typer.Option("--world-dir", help="Demo world cache directory.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Demo world seed (0 or more).", min=0)] = 0,
    stages: StagesOption = None,
) -> None:
    """Build the demo world, serve it on 127.0.0.1, run the whole pipeline on it, print a summary."""
    from flows.demo import report_lines, run_demo

    if world_dir is not None and world_dir.exists() and not world_dir.is_dir():
        fail(f"--world-dir {world_dir}: is a file, not a folder for the demo world's cache")
    root = DataRoot.from_any(data_root)
    summaries = run_demo(
        root.url, site_url=site_url, world_dir=world_dir, seed=seed, stages=_stages(stages), log=typer.echo
    )
    for line in report_lines(root, summaries):
        typer.echo(line)


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="Config file: .yaml/.yml, .toml or .json (write one with --print-config)."),
]
SetsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="STAGE.FIELD=VALUE",
        help="Override one config field, value as YAML (repeatable; wins over --config and options): "
        "--set search.max_results=50 --set runner.dask_address=tcp://scheduler:8786.",
    ),
]
DemoSiteOption = Annotated[
    str | None,
    demo_url_option(
        "A local demo site (howto demo-site serve) instead of YouTube and wikiHow, with howto demo's "
        "settings (politeness off, random weights, its input sizes and training config) under --config "
        "and --set: the same shards as howto demo's on its port, 8647."
    ),
]


def _demo_base(demo_url: str | None) -> PipelineConfig | None:
    if not demo_url:
        return None
    from flows.demo import demo_pipeline_config  # brings the training code (torch): only for the demo site

    return demo_pipeline_config(demo_url)


# A re-crawl searches the kept tasks again: every stage after tasks may follow it.
RECRAWL_STAGES: tuple[Stage, ...] = tuple(s for s in ALL_STAGES if s != "tasks")


def _require_devices(cfg: PipelineConfig, stages: list[Stage]) -> None:
    """Each chosen torch stage's device must be on this machine: one line now, not after collection."""
    for stage, device in (("train", cfg.train.device), ("features", cfg.features.device),
                          ("audio", cfg.audio.device)):  # fmt: skip
        if stage in stages:
            require_device(device, f"{stage}.device")


def pipeline_command(
    config: ConfigOption = None,
    sets: SetsOption = None,
    data_root: DataRootOption = None,
    stages: StagesOption = None,
    loss: LossOption = None,
    text: TextOption = None,
    task_runner: Annotated[
        str | None,
        choice_option(
            "--task-runner",
            RUNNERS,
            "Where shard tasks run (runner.task_runner); dask alone starts a local cluster.",
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Shard tasks at once (runner.max_workers).")
    ] = None,
    print_config: Annotated[
        bool,
        typer.Option("--print-config", help="Print the resolved config as YAML (secrets masked) and exit."),
    ] = False,
    demo_url: DemoSiteOption = None,
) -> None:
    """Run the pipeline (or some stages): defaults < --config < options < --set; finished shards are skipped."""
    given = {
        ("--loss", ("train", "loss")): loss,
        ("--text", ("train", "text")): text,
        ("--task-runner", ("runner", "task_runner")): task_runner,
        ("--workers", ("runner", "max_workers")): workers,
    }
    options = [Override(label, key, value) for (label, key), value in given.items() if value is not None]
    cfg = resolve(config, options, sets or [], base=_demo_base(demo_url))
    if print_config:
        typer.echo(to_yaml(cfg), nl=False)
        return
    from flows.pipeline import check_share, check_stage_weights, pipeline
    from flows.stage_inputs import require_chain_start

    check_share(cfg.runner, _stages(stages))  # before Prefect starts
    _require_devices(cfg, _stages(stages))
    root = DataRoot.from_any(data_root)
    require_chain_start(root, _stages(stages))
    check_stage_weights(cfg, _stages(stages))  # before Prefect starts (the flow checks again)
    summaries = pipeline(cfg=cfg, data_root=root.url, stages=_stages(stages))
    typer.echo(json.dumps(summaries, indent=1, default=str))


def recrawl_command(
    config: ConfigOption = None,
    sets: SetsOption = None,
    data_root: DataRootOption = None,
    stages: Annotated[
        list[str] | None,
        choice_option(
            "--stage",
            RECRAWL_STAGES,
            "Stages this re-crawl runs (repeatable); default "
            f"{', '.join(RECRAWL_DEFAULT_STAGES)} (as the pipeline gives every video; train is its own run).",
        ),
    ] = None,
    crawl_id: Annotated[
        str | None,
        typer.Option(
            "--crawl-id",
            help="Default: the newest crawl if its re-crawl did not finish (a rerun resumes it), "
            "else one more than the newest (crawl-0001, ...).",
        ),
    ] = None,
    recheck_missing: Annotated[
        bool,
        typer.Option(
            "--recheck-missing/--no-recheck-missing",
            help="Probe kept videos the new search no longer finds; gone ones are recorded as vanished.",
        ),
    ] = True,
    recheck_captions: Annotated[
        int | None,
        typer.Option(
            "--recheck-captions",
            min=0,
            help="Probe up to N known kept videos again (the longest unchecked first) and record caption "
            "changes; default: the search config's recheck_captions (50); 0 turns it off.",
        ),
    ] = None,
    demo_url: DemoSiteOption = None,
) -> None:
    """Search every kept task again under a new crawl id: new videos are processed, gone and changed
    ones recorded (the `crawls` view, `howto report`); earlier shards are never rewritten."""
    from flows.pipeline import check_share, check_stage_weights
    from flows.recrawl import CRAWL_ID, DEFAULT_STAGES, recrawl
    from flows.stage_inputs import require_upstream

    cfg = resolve(config, [], sets or [], base=_demo_base(demo_url))
    # --set wins over the options: the flow lays its recheck arguments over cfg.search, so a field given
    # with --set is passed on as the argument (a --config file's values stay under the command's defaults).
    set_keys = {parse_set(item).key for item in sets or []}
    if ("search", "recheck_missing") in set_keys:
        recheck_missing = cfg.search.recheck_missing
    if ("search", "recheck_captions") in set_keys:
        recheck_captions = cfg.search.recheck_captions
    if crawl_id is not None and not CRAWL_ID.match(crawl_id):
        fail(f"--crawl-id {crawl_id}: must look like crawl-0001")
    root = DataRoot.from_any(data_root)
    require_upstream(root, "search")
    chosen = [s for s in RECRAWL_STAGES if s in stages] if stages else None
    check_share(cfg.runner, chosen or DEFAULT_STAGES)  # before Prefect starts
    _require_devices(cfg, chosen or DEFAULT_STAGES)
    check_stage_weights(cfg, chosen or DEFAULT_STAGES)  # before Prefect starts (the flow checks again)
    summaries = recrawl(cfg, root.url, crawl_id, recheck_missing, chosen, recheck_captions)
    typer.echo(json.dumps(summaries, indent=1, default=str))


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
    app.command("pipeline")(pipeline_command)
    app.command("recrawl")(recrawl_command)
