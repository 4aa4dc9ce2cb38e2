"""What each stage needs on disk before it can start, checked up front ("run X first", exit 2).

A stage run on a data root where its upstream stage never ran would otherwise start Prefect, find zero
shards and report success with nothing done. The same holds when the upstream's only shards are damaged
(a file cut short after its marker was written): readers leave them out, so they count as not finished,
and the line says which file is damaged. The commands check before Prefect starts; the pipeline and
recrawl flows check again for the runs no command starts (deployments, schedules, triggers). The shard
runner checks each input shard again per shard.
"""

from __future__ import annotations

from collections.abc import Sequence

from flows.pipeline_config import ALL_STAGES, Stage
from storage.layout import DataRoot
from storage.shards import any_verified_marker, collecting_left_out
from tasks.shard_runner import UpstreamMissing

# stage -> (dataset it reads, stage that writes it, the command that does). Only required inputs.
UPSTREAM: dict[Stage, tuple[tuple[str, Stage, str], ...]] = {
    "search": (("tasks", "tasks", "howto tasks mine, or howto tasks import FILE"),),
    "captions": (("videos", "search", "howto search-videos"),),
    "features": (("videos", "search", "howto search-videos"),),
    # Audio reuses the tracks the features stage downloaded and writes shard k beside its frame_features k.
    "audio": (
        ("videos", "search", "howto search-videos"),
        ("frame_features", "features", "howto features run"),
    ),
    "train": (
        ("clips", "captions", "howto captions fetch"),
        ("frame_features", "features", "howto features run"),
    ),
}


def require_upstream(root: DataRoot, stage: Stage) -> None:
    """Raise UpstreamMissing naming the command to run when `stage`'s input has no finished shard."""
    for dataset, writer, command in UPSTREAM.get(stage, ()):
        # Verified, not merely listed: a marker whose file is damaged vouches for nothing a reader will read.
        with collecting_left_out() as damaged:
            finished = any_verified_marker(root, dataset)
        if not finished:
            also = f" (left out: {damaged[0]})" if damaged else ""
            raise UpstreamMissing(
                f"no finished {dataset} shards in {root.url}: run the {writer} stage first ({command}){also}"
            )


def require_chain_start(root: DataRoot, stages: Sequence[Stage]) -> None:
    """A pipeline run starts at its first chosen stage: that one's input must be on disk already
    (later stages get theirs from the run, or from earlier runs)."""
    chosen = [s for s in ALL_STAGES if s in stages]
    if chosen:
        require_upstream(root, chosen[0])


def require_own_input(root: DataRoot, stage: Stage) -> None:
    """In a stage's own flow: started on its own (its deployment, a schedule, a trigger: no command in front
    to check first), a stage on a root without its input fails with the "run X first" line, where it used to
    find zero shards and Complete, which also fired the automations waiting for it.

    Inside a pipeline or recrawl run (a subflow) it checks nothing: that run checked its first stage's
    input, and a later stage's input is what the run's earlier stages made; if they made nothing, their
    own summaries say why, not a "run X first" for a stage the run has just done."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    flow_run = context.flow_run if context is not None else None
    if flow_run is not None and flow_run.parent_task_run_id is not None:
        return
    require_upstream(root, stage)
