"""CLI: `howto bench retrieval-ceiling`, what step labels allow held-out text->video retrieval to reach."""

from __future__ import annotations

from typing import Annotated

import typer

from flows.cli_common import ExistingDataRootOption, bench_app, fail


def bench_retrieval_ceiling_command(
    data_root: ExistingDataRootOption = None,
    heldout_fraction: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Share of videos held out (by hash of id), as in training."),
    ] = 0.3,
    k: Annotated[int, typer.Option("--k", min=1, help="R@k whose step-tie ceiling is printed.")] = 5,
) -> None:
    """Ceilings of held-out text->video R@k on a `howto demo` root, from the demo's step annotations.

    Each caption line is labelled with the annotated step it overlaps most (or its task's "no step").
    Prints (a) the R@k of a model that knows each query's step but cannot tell clips of a step apart,
    (b) how well a ridge probe reads the step from the video vectors alone (two poolings), (c) how
    well the nearest training line's step fits from MiniLM text alone, and (d) chance.
    """
    from storage.layout import DataRoot
    from tasks.bench.retrieval_ceiling_root import CeilingDataError, measure, report_lines

    root = DataRoot.from_any(data_root)
    try:
        report = measure(root, heldout_fraction, k)
    except CeilingDataError as exc:
        fail(str(exc))
    typer.echo(f"retrieval ceiling of {root.url}")
    for line in report_lines(report):
        typer.echo(line)


def register(app: typer.Typer) -> None:
    """Mount on the `howto` app (flows/cli.py discovers this)."""
    bench_app.command("retrieval-ceiling")(bench_retrieval_ceiling_command)
