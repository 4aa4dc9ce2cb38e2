"""CLI: `howto report` (dataset card, static HTML page and plots of a data root)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from flows.cli_common import ExistingDataRootOption, data_root_with_datasets, fail


def report_command(
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default: <data root>/report).")
    ] = None,
    data_root: ExistingDataRootOption = None,
) -> None:
    """Write a dataset card (README.md), a static page (index.html) and PNG plots for the data root."""
    from tasks.report.card import write_report

    root = data_root_with_datasets(data_root)
    if out is None:
        if not root.is_local:
            fail("--out is needed for a remote data root")
        out = Path(root.url) / "report"
    summary = write_report(root, out)  # an --out in the data root, a file or unwritable: exit 2, first
    typer.echo(json.dumps(summary, indent=1))


def register(app: typer.Typer) -> None:
    app.command("report")(report_command)
