"""The whole pipeline: each stage flow in order as a subflow, every one cached and resumable by shard."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.pipeline_config import ALL_STAGES, PipelineConfig, Stage, Stages
from flows.runtime import RunnerConfig, shard_share, with_runner
from flows.stage_inputs import require_chain_start
from storage.layout import DataRoot, check_data_root
from tasks.report.markdown_text import md_counts, md_text

# Each stage's flow (and the weights checks) is imported when a run selects it: the encoder stages bring
# torch and torchvision (~5 s of CPU at every start on a 2-core AVX2 machine), which a run of the
# collection stages, a scheduled re-crawl or a `collect` deployment run never uses.


def _compute_runner(runner: RunnerConfig) -> RunnerConfig:
    # torch already uses every core of the machine: one shard at a time unless shards go to Dask workers.
    if runner.task_runner == "dask":
        return runner
    return runner.model_copy(update={"max_workers": 1})


# Stages whose shard k depends only on upstream shard k, so runs can split them (runner.part/parts). The
# search stage de-duplicates videos over every search shard before it plans the probes: it needs the whole
# stage in one run. Training always trains once over every ready shard, whatever the share.
SHAREABLE: tuple[Stage, ...] = ("tasks", "captions", "features", "audio")


class ShareRefused(ValueError):
    """A split run (runner.parts > 1) of a stage that cannot be split: a bad config, one line and exit 2."""


def check_share(runner: RunnerConfig, stages: list[Stage]) -> None:
    """Refuse a split run (runner.parts > 1) of a stage that cannot be split, before any work."""
    unsplittable = [s for s in stages if s not in SHAREABLE and s != "train"]
    if runner.parts > 1 and unsplittable:
        raise ShareRefused(
            f"runner.parts={runner.parts} splits only the {', '.join(SHAREABLE)} stages; run "
            f"{', '.join(unsplittable)} in one run (parts=1)"
        )


def check_stage_weights(cfg: PipelineConfig, stages: list[Stage]) -> None:
    """Fail in seconds when a selected encoder stage would refuse its weights (missing, not weights, or
    none and random ones not allowed), not hours later after the collection stages before it."""
    if "features" in stages:
        from tasks.features.weights import check_weights

        check_weights(
            cfg.features.models,
            random_weights=cfg.features.random_weights,
            resnet_weights=cfg.features.resnet_weights,
            resnext_weights=cfg.features.resnext_weights,
        )
    if "audio" in stages:
        from tasks.audio.weights import check_audio_weights

        check_audio_weights(cfg.audio)


def run_stages(
    cfg: PipelineConfig, data_root: str, stages: tuple[Stage, ...] | list[Stage]
) -> dict[str, Any]:
    """Run the selected stages in pipeline order; a stage's changed config reruns it and those after it
    (their shard hashes chain to upstream markers), never the ones before."""
    summaries: dict[str, Any] = {}
    selected = [s for s in ALL_STAGES if s in stages]
    check_share(cfg.runner, selected)
    check_stage_weights(cfg, selected)
    with shard_share(cfg.runner):
        if "tasks" in selected:
            from flows.mine_tasks import mine_tasks

            summaries["tasks"] = with_runner(mine_tasks, cfg.runner)(cfg.tasks, data_root)
        if "search" in selected:
            from flows.search_videos import search_videos

            summaries["search"] = with_runner(search_videos, cfg.runner)(cfg.search, data_root, cfg.youtube)
        if "captions" in selected:
            from flows.fetch_captions import fetch_captions

            summaries["captions"] = with_runner(fetch_captions, cfg.runner)(
                cfg.captions, data_root, cfg.youtube
            )
        if "features" in selected:
            from flows.extract_features import extract_features

            summaries["features"] = with_runner(extract_features, _compute_runner(cfg.runner))(
                cfg.features, data_root, cfg.youtube
            )
        if "audio" in selected:
            from flows.extract_audio import extract_audio

            summaries["audio"] = with_runner(extract_audio, _compute_runner(cfg.runner))(
                cfg.audio, data_root, cfg.youtube
            )
    if "train" in selected:
        from flows.train_embedding import train_embedding

        summaries["train"] = with_runner(train_embedding, _compute_runner(cfg.runner))(cfg.train, data_root)
    return summaries


def summary_markdown(title: str, summaries: dict[str, Any]) -> str:
    """The run's table of stages for its Markdown artifact; names and drop reasons (from the data) as text."""
    lines = [
        f"# {md_text(title)}",
        "",
        "| stage | shards (cached) | rows in | rows out | drops | errors |",
        "|---|---|---|---|---|---|",
    ]
    for stage, s in summaries.items():
        if not isinstance(s, dict):
            continue
        cells = [
            md_text(stage),
            f"{md_text(s.get('shards', '-'))} ({md_text(s.get('shards_cached', '-'))})",
            *(md_text(s.get(k, "-")) for k in ("rows_in", "rows_out")),
            md_counts(s.get("drops") or {}),
            md_text(s.get("errors", "-")),
        ]
        lines.append(f"| {' | '.join(cells)} |")
    return "\n".join(lines)


@flow(name="pipeline", log_prints=False)
def pipeline(
    cfg: PipelineConfig = PipelineConfig(),
    data_root: str | None = None,
    stages: Stages = ALL_STAGES,
) -> dict[str, Any]:
    """wikiHow tasks -> search and probe -> captions and clips -> features -> audio -> joint embedding.

    Args:
        cfg: every stage's settings; secrets (cookies, proxy) are `env:NAME` or `block:NAME` references.
        data_root: local path or fsspec URL; empty: the worker's $HOWTO_DATA_ROOT (the deployment's job
            variables set it), else ./data in the worker's working directory.
        stages: the stages this run does, always in pipeline order.
    """
    cfg = cfg or PipelineConfig()
    root = DataRoot.from_any(data_root)
    check_data_root(root)  # a file, read-only or full root fails here, before any network work
    chosen = list(stages or ALL_STAGES)
    # A deployment run on a root where its first stage's input was never made (a mistyped root, a wrong
    # job variable) found zero shards in every stage and Completed, triggering the next link of the chain:
    # the same one-line "run X first" as `howto pipeline` gives before Prefect starts. Training, first,
    # checks its own input (its pairs alone suffice) with as clear a message.
    require_chain_start(root, [s for s in chosen if s != "train"])
    get_run_logger().info("pipeline on %s: stages %s", root.url, ", ".join(chosen))
    summaries = run_stages(cfg, root.url, chosen)
    create_markdown_artifact(
        summary_markdown("pipeline", summaries),
        key="pipeline-summary",
        description="rows in/out and drops per stage",
    )
    return summaries


__all__ = ["ALL_STAGES", "PipelineConfig", "Stage", "pipeline", "run_stages"]
