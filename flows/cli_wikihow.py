"""CLI of stage 1: `howto wikihow parse`, `howto tasks import`, `howto tasks mine`."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from flows.cli_common import DataRootOption, checked_by, crawl_id_option, fail
from flows.terminal_text import terminal_safe
from storage.layout import ROOT_ERRNOS, DataRoot, describe_os_error
from tasks.config_types import check_http_url


class ImportFormatChoice(StrEnum):
    howto100m = "howto100m"
    lines = "lines"
    csv = "csv"


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        fail(f"{path}: no such file")
    except IsADirectoryError:
        fail(f"{path}: is a directory")
    except OSError as exc:
        fail(f"{path}: cannot read ({exc.strerror or exc})")


def parse_command(
    file: Annotated[Path, typer.Argument(help="A saved wikiHow article page (.html).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the parse as JSON.")] = False,
) -> None:
    """Parse one wikiHow article page: task title, categories (leaf..level-1), methods and steps."""
    from tasks.wikihow.bounded_parse import BoundedParser
    from tasks.wikihow.parser import ParseError

    data = _read_bytes(file)
    try:
        with BoundedParser() as parser:  # a saved hostile page stops at the stage's limits too
            article = parser.parse(data)
    except ParseError as exc:
        fail(f"{file}: {exc}")
    parsed = article.to_json_dict()
    if as_json:
        typer.echo(json.dumps(parsed, ensure_ascii=False, indent=2))
        return
    # The page's text (a saved page is anyone's): its control characters shown as escapes, never obeyed.
    typer.echo(f"title: {terminal_safe(article.title)}")
    typer.echo(f"categories: {terminal_safe(' < '.join(article.categories)) or '-'}")
    typer.echo(f"steps: {article.n_steps} in {len(article.methods)} {article.methods[0].kind}(s)")
    for number, method in enumerate(article.methods, 1):
        typer.echo(f"{method.kind} {number}: {terminal_safe(method.name or '-')}")
        for index, step in enumerate(method.steps, 1):
            typer.echo(f"  {index}. {terminal_safe(step.summary)}")


def import_command(
    file: Annotated[Path, typer.Argument(help="Task list file.")],
    fmt: Annotated[
        ImportFormatChoice,
        typer.Option(
            "--format",
            help="howto100m: task_ids.csv (id<TAB>title); lines: a title per line; "
            "csv: a header with a `title` column.",
        ),  # fmt: skip
    ] = ImportFormatChoice.howto100m,
    data_root: DataRootOption = None,
    crawl_id: Annotated[str, crawl_id_option("Recorded on every row.")] = "crawl-0000",
    replace: Annotated[
        bool, typer.Option("--replace", help="Drop every earlier imported list first (default: append).")
    ] = False,
) -> None:
    """Import a task list into the `tasks` dataset, appended to earlier imports (visual-verb filter and
    de-dup against the tasks already there applied, ids kept); the same file twice writes nothing."""
    from tasks.tasks.imports import import_tasks
    from tasks.tasks.task_lists import ImportFormatError

    if not file.exists():
        fail(f"{file}: no such file")
    try:
        summary = import_tasks(file, fmt.value, data_root, crawl_id=crawl_id, replace=replace)
    except ImportFormatError as exc:
        fail(f"{file}: {exc}")
    except IsADirectoryError:
        fail(f"{file}: is a directory")
    except OSError as exc:
        if exc.errno in ROOT_ERRNOS:  # a write under the data root failed, not the read of the list
            fail(describe_os_error(DataRoot.from_any(data_root).url, exc))
        fail(f"{file}: cannot read ({exc.strerror or exc})")
    typer.echo(json.dumps(summary, indent=2))


def mine_command(
    base_url: Annotated[
        str,
        typer.Option(
            help="wikiHow or a site with the same API.", callback=checked_by("--base-url", check_http_url)
        ),
    ] = "https://www.wikihow.com",
    data_root: DataRootOption = None,
    category: Annotated[
        list[str] | None, typer.Option("--category", help="Root category (repeat); default: all level-1.")
    ] = None,
    max_articles: Annotated[int | None, typer.Option(help="Stop after this many articles.")] = None,
    rps: Annotated[float, typer.Option(help="Requests per second (politeness cap).")] = 1.0,
    crawl_id: Annotated[str, crawl_id_option("Recorded on every row.")] = "crawl-0000",
) -> None:
    """Crawl wikiHow's categories and mine visual tasks into the `tasks` dataset (resumable).

    Other settings (max_depth, shard_size, ...): `howto pipeline --stage tasks --set tasks.FIELD=VALUE`.
    """
    from pydantic import ValidationError

    from flows.mine_tasks import mine_tasks
    from tasks.tasks.config import MineTasksConfig

    options: dict[str, object] = {
        "base_url": base_url, "max_articles": max_articles, "rps": rps, "crawl_id": crawl_id,
    }  # fmt: skip
    if category:
        options["root_categories"] = tuple(category)
    try:
        cfg = MineTasksConfig.model_validate(options)
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"bad option {'.'.join(map(str, first['loc']))}: {first['msg']}")
    summary = mine_tasks(cfg, data_root=data_root)
    typer.echo(json.dumps(summary, indent=2, default=str))


def register(app: typer.Typer) -> None:
    wikihow = typer.Typer(help="wikiHow pages: parse a saved article.", no_args_is_help=True)
    wikihow.command("parse")(parse_command)
    tasks_app = typer.Typer(
        help="The `tasks` dataset: mine wikiHow or import a task list.", no_args_is_help=True
    )
    tasks_app.command("import")(import_command)
    tasks_app.command("mine")(mine_command)
    app.add_typer(wikihow, name="wikihow")
    app.add_typer(tasks_app, name="tasks")
