"""`option_group`: options declared once show on every command that takes the group, after its own."""

from __future__ import annotations

from typing import Annotated

import typer
from typer.testing import CliRunner

from flows.cli_common import option_group

SizeOption = Annotated[int, typer.Option("--size", min=1, help="A shared size.")]


def _window(size: SizeOption = 3, label: Annotated[str, typer.Option(help="A shared label.")] = "w") -> str:
    return f"{label}{size}"


app = typer.Typer()


@app.command("one")
@option_group(_window, "window")
def one(count: Annotated[int, typer.Option(help="Own option.")] = 1, *, window: str) -> None:
    typer.echo(f"count={count} window={window}")


@app.command("two")
@option_group(_window, "window")
def two(name: Annotated[str, typer.Argument()], *, window: str) -> None:
    typer.echo(f"name={name} window={window}")


def test_group_values_reach_the_command_as_one_value() -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["one"]).output == "count=1 window=w3\n"
    assert (
        runner.invoke(app, ["one", "--size", "5", "--count", "2", "--label", "x"]).output
        == "count=2 window=x5\n"
    )
    assert runner.invoke(app, ["two", "a", "--size", "4"]).output == "name=a window=w4\n"


def test_group_options_keep_their_checks_and_follow_the_commands_own_in_help() -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["one", "--size", "0"])
    assert bad.exit_code == 2 and "--size" in bad.output
    text = runner.invoke(app, ["one", "--help"]).output
    assert text.index("--count") < text.index("--size") < text.index("--label")
    assert "--window" not in text
