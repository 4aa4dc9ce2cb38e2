"""Artifacts the Prefect UI shows while and after a stage runs: a table of its shards, training progress."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact

from tasks.report.markdown_text import md_counts


def artifact_key(name: str) -> str:
    """`name` as an artifact key (Prefect allows lowercase letters, digits and dashes only)."""
    return "".join(c if c.isalnum() else "-" for c in name.lower())


def shard_rows(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One table row per shard manifest: what went in, what came out, why rows were dropped. The UI renders
    a string cell as Markdown: the drop reasons (from the data) are escaped as text."""
    rows = []
    for m in manifests:
        drops = md_counts(dict(sorted((m.get("drops") or {}).items())))
        rows.append(
            {
                "shard": m.get("shard", "-"),
                "cached": bool(m.get("cached")),
                "rows_in": int(m.get("rows_in", 0)),
                "rows_out": int(m.get("rows_out", 0)),
                "errors": int(m.get("errors", 0)),
                "drops": drops,
            }
        )
    return sorted(rows, key=lambda r: (str(type(r["shard"])), r["shard"]))


def publish_shard_table(stage: str, manifests: list[dict[str, Any]]) -> None:
    """The stage's per-shard table artifact (key `<stage>-shards`: the UI keeps its history run by run)."""
    create_table_artifact(
        shard_rows(manifests), key=f"{artifact_key(stage)}-shards", description=f"{stage}: one row per shard"
    )


def epoch_progress(run_name: str, epochs: int, done: int = 0) -> Callable[[dict[str, Any]], None]:
    """A progress artifact at `done`/`epochs`, and the per-epoch callback that moves it forward."""
    artifact_id: Any = create_progress_artifact(  # sync code: the UUID, not a coroutine
        100.0 * done / epochs,
        key=f"{artifact_key(run_name)}-epochs",
        description=f"training {run_name}: epochs finished",
    )

    def on_epoch(row: dict[str, Any]) -> None:
        update_progress_artifact(artifact_id, 100.0 * int(row["epoch"]) / epochs)

    return on_epoch
