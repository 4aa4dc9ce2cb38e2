"""CLI: `howto search-videos`, `howto youtube inspect INFO.json`, `howto videos import FILE`, `howto bench search`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from flows import cli_access
from flows.cli_common import DataRootOption, bench_app, crawl_id_option, fail, option_group, require_file
from tasks.youtube.access import YoutubeAccess

youtube_app = typer.Typer(
    help="Look at YouTube metadata the way the search stage does.", no_args_is_help=True
)
videos_app = typer.Typer(help="Feed videos to the probe stage without searching.", no_args_is_help=True)


@youtube_app.command("inspect")
def inspect_command(
    info_file: Annotated[Path, typer.Argument(help="A yt-dlp/youtube-dl --write-info-json file.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object instead of text.")] = False,
) -> None:
    """Apply the keep/drop decision to a saved info file (new yt-dlp or old youtube-dl)."""
    from tasks.youtube.decision import decide, not_video_info

    try:
        info = json.loads(info_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        fail(f"{info_file}: no such file")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{info_file}: cannot read: {exc}")
    except json.JSONDecodeError as exc:
        fail(f"{info_file}: not JSON: {exc.msg} at line {exc.lineno}")
    except ValueError as exc:  # an integer of more than 4,300 digits (Python's int conversion limit)
        fail(f"{info_file}: not JSON this reads: {exc}")
    except RecursionError:
        fail(f"{info_file}: not JSON this reads: nested too deeply")
    if (why := not_video_info(info)) is not None:
        fail(f"{info_file}: not a single-video info dict: {why}")
    summary = decide(info).summary()
    if as_json:
        typer.echo(json.dumps(summary))
        return
    caption = summary["caption"]
    typer.echo(f"video_id:    {summary['video_id']}")
    typer.echo(f"duration_s:  {summary['duration_s']}")
    typer.echo(f"view_count:  {summary['view_count']}")
    typer.echo(f"caption:     {caption['lang'] + ' (' + caption['kind'] + ')' if caption else '-'}")
    typer.echo(
        f"keep:        {summary['keep']}" + (f" ({summary['drop_reason']})" if summary["drop_reason"] else "")
    )


@videos_app.command("import")
@option_group(cli_access.access_from_options, "access")
def import_command(
    access: YoutubeAccess,  # the access options (option_group)
    file: Annotated[Path, typer.Argument(help="Ids or URLs, one per line, or HowTo100M_v1.csv.")],
    data_root: DataRootOption = None,
    crawl_id: Annotated[str, crawl_id_option("Crawl id recorded on every row.")] = "crawl-0000",
) -> None:
    """Probe and filter the listed videos (those already known are skipped)."""
    from pydantic import ValidationError

    from flows.search_videos import import_videos
    from tasks.search.config import SearchVideosConfig
    from tasks.youtube.ids import ImportFileError, parse_import_text

    require_file(file)
    try:
        parsed = parse_import_text(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ImportFileError) as exc:
        fail(f"{file}: cannot read: {exc}")
    if not any(p.video_id for p in parsed):
        fail(f"{file}: no video ids or video URLs found")
    try:
        cfg = SearchVideosConfig(crawl_id=crawl_id)
    except ValidationError as exc:
        fail(f"{file}: bad option: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}")
    summary = import_videos(str(file), cfg, data_root, access)
    typer.echo(json.dumps(summary, indent=1))


@option_group(cli_access.access_from_options, "access")
def search_videos_command(
    access: YoutubeAccess,  # the access options (option_group)
    data_root: DataRootOption = None,
    max_results: Annotated[
        int | None, typer.Option("--max-results", min=1, help="Search hits per task (search.max_results).")
    ] = None,
    crawl_id: Annotated[str | None, crawl_id_option("Crawl id recorded on every row.")] = None,
) -> None:
    """Search every kept task, probe each new video once, keep or drop it (finished shards are skipped).

    Other search settings: `howto pipeline --stage search --set search.FIELD=VALUE`.
    """
    from flows.search_videos import search_videos
    from flows.stage_inputs import require_upstream
    from storage.layout import DataRoot
    from tasks.search.config import SearchVideosConfig

    # The demo site answers the demo search key (its own yt-dlp extractor), not YouTube's `ytsearch`.
    given = {
        "max_results": max_results,
        "crawl_id": crawl_id,
        "search_prefix": "demosearch" if access.site_url else None,
    }
    cfg = SearchVideosConfig(**{k: v for k, v in given.items() if v is not None})
    require_upstream(DataRoot.from_any(data_root), "search")
    typer.echo(json.dumps(search_videos(cfg, data_root, access), indent=1, default=str))


def bench_search_command(
    videos: Annotated[
        int, typer.Option(min=1, help="Probes to time (the demo world's videos, cycled).")
    ] = 200,
) -> None:
    """Videos probed per second per process against the demo site, politeness off; share of time in yt-dlp."""
    from tasks.bench.youtube import run_bench

    run_bench(videos, log=typer.echo)


def register(app: typer.Typer) -> None:
    app.add_typer(youtube_app, name="youtube")
    app.add_typer(videos_app, name="videos")
    app.command("search-videos")(search_videos_command)
    bench_app.command("search")(bench_search_command)
