"""CLI: `howto captions parse FILE.vtt [--json]`, `howto captions fetch`, `howto bench captions`."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from flows import cli_access
from flows.cli_common import DataRootOption, bench_app, choice_option, fail, finite, option_group
from flows.terminal_text import terminal_safe
from tasks.youtube.access import YoutubeAccess

KINDS = ("auto", "manual")

app = typer.Typer(
    help="Caption tracks: parse and clean one .vtt file, or run the captions stage.", no_args_is_help=True
)


def _ms(ms: int) -> str:
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    return f"{h:02d}:{m:02d}:{rem / 1000:06.3f}"


@app.command("parse")
def parse_command(
    file: Annotated[
        Path,
        typer.Argument(
            help="A caption file (YouTube auto or manual track): WebVTT, or YouTube's timedtext XML "
            "(srv1, srv2, srv3), told by its content."
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line: summary, then segments.")
    ] = False,
    kind: Annotated[
        str | None,
        choice_option("--kind", KINDS, "Default: detected from the file."),
    ] = None,
    language: Annotated[
        str | None, typer.Option(help="Track language (default: the Language: header).")
    ] = None,
    keep_non_speech: Annotated[bool, typer.Option(help="Keep [Music]-style tags in the text.")] = False,
) -> None:
    """Clean one caption file: no repeated rolling lines, no flash segments, sorted and non-overlapping."""
    from tasks.captions.vtt import parse_vtt

    if file.is_dir():
        fail(f"{file}: is a directory, not a .vtt file")
    if not file.is_file():
        fail(f"{file}: no such file")
    try:
        data = file.read_bytes()
    except OSError as exc:
        fail(f"{file}: cannot read: {exc.strerror or exc}")
    track = parse_vtt(data, kind=kind, language=language, keep_non_speech=keep_non_speech)  # type: ignore[arg-type]
    if not track.segments and track.warnings:
        fail(f"{file}: no caption cues could be read ({'; '.join(track.warnings)})")
    for warning in track.warnings:
        typer.echo(f"warning: {file}: {terminal_safe(warning)}", err=True)
    if as_json:
        typer.echo(json.dumps(track.summary(), ensure_ascii=False))
        for s in track.segments:
            typer.echo(
                json.dumps({"start_ms": s.start_ms, "end_ms": s.end_ms, "text": s.text}, ensure_ascii=False)
            )
        return
    summary = track.summary()
    typer.echo(" ".join(f"{k}={v}" for k, v in summary.items()))
    for s in track.segments:
        # The cue text is the file's (an uploader's): its control characters shown, never obeyed.
        typer.echo(f"{_ms(s.start_ms)} --> {_ms(s.end_ms)}  {terminal_safe(s.text)}")


@app.command("fetch")
@option_group(cli_access.access_from_options, "access")
def fetch_command(
    access: YoutubeAccess,  # the access options (option_group)
    data_root: DataRootOption = None,
) -> None:
    """Download, clean and cut the captions of every kept video (finished shards are skipped).

    Other captions settings (min_words, clip_min_ms, ...): `howto pipeline --stage captions --set
    captions.FIELD=VALUE`.
    """
    from flows.fetch_captions import fetch_captions
    from flows.stage_inputs import require_upstream
    from storage.layout import DataRoot
    from tasks.captions.config import FetchCaptionsConfig

    cfg = FetchCaptionsConfig()
    require_upstream(DataRoot.from_any(data_root), "captions")
    summary = fetch_captions(cfg, data_root, access)
    typer.echo(json.dumps(summary, indent=1))


def bench_captions_command(
    seconds: Annotated[
        float, typer.Option(callback=finite("--seconds"), help="CPU seconds to spend on each measurement.")
    ] = 3.0,
    long_minutes: Annotated[int, typer.Option(help="Length of the long generated track.", min=7)] = 120,
) -> None:
    """Caption files cleaned per CPU-second (parse + clean + clips + Parquet) vs a naive read: 6 min and 2 h."""
    from tasks.bench.captions import run_bench

    if not 0 < seconds < math.inf:  # NaN too: each measurement would end at once, or never
        fail(f"--seconds {seconds}: give a positive number of CPU seconds per measurement")
    typer.echo("note: one thread, CPU time (per core); generated rolling auto tracks; shared machine.")
    with tempfile.TemporaryDirectory(prefix="howto-bench-captions-") as tmp:
        run_bench(Path(tmp), seconds, long_minutes, log=typer.echo)


def register(root: typer.Typer) -> None:
    """Mount on the `howto` app (flows/cli.py discovers this)."""
    root.add_typer(app, name="captions")
    bench_app.command("captions")(bench_captions_command)
