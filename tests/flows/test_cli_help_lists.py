"""`howto --help` and every group's --help list each command beside its summary, read as one line."""

from __future__ import annotations

import re

import typer
from typer.testing import CliRunner

from flows.cli import app, one_line_summary


def _commands_panel(output: str) -> str:
    return output.split("Commands")[1] if "Commands" in output else ""


def test_one_line_summary_takes_the_first_paragraph_whole() -> None:
    doc = """Check offline what a real run needs (ffmpeg,
        yt-dlp, cookies): one line each.

        Details that a list never shows."""
    assert (
        one_line_summary(doc)
        == "Check offline what a real run needs (ffmpeg, yt-dlp, cookies): one line each."
    )


def test_the_root_list_wraps_summaries_only_at_the_terminal_edge() -> None:
    # Wide enough that no summary needs wrapping: each command's summary then sits on its own line, whole.
    output = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "400", "TERMINAL_WIDTH": "400"}).output
    panel = _commands_panel(output)
    rows = [line for line in panel.splitlines() if re.match(r"│ [a-z]", line)]
    continuation = [line for line in panel.splitlines() if re.match(r"│\s{3,}\S", line)]
    assert len(rows) > 20 and continuation == [], continuation[:3]
    doctor = next(line for line in rows if line.startswith("│ doctor "))
    assert "torch, NVDEC, Prefect, data root): one line each with the fix" in doctor


def test_every_group_lists_its_commands_with_whole_summaries() -> None:
    runner = CliRunner()
    groups = [g.name for g in app.registered_groups if isinstance(g.typer_instance, typer.Typer)]
    assert {"bench", "features", "train", "eval"} <= set(groups)
    for name in groups:
        output = runner.invoke(app, [name, "--help"], env={"COLUMNS": "400", "TERMINAL_WIDTH": "400"}).output
        panel = _commands_panel(output)
        assert panel, f"{name}: no command list"
        continuation = [line for line in panel.splitlines() if re.match(r"│\s{3,}\S", line)]
        assert continuation == [], f"{name}: {continuation[:2]}"


def test_every_option_of_every_command_says_what_it_does() -> None:
    """`--help` explains each option: a bare `--epochs <int>` left the user guessing whose epochs."""
    silent: list[str] = []

    def walk(command: object, path: list[str]) -> None:
        for param in getattr(command, "params", []):
            if getattr(param, "param_type_name", "") == "option" and not (param.help or "").strip():
                silent.append(f"{' '.join(path)} {param.opts[0]}")
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), ["howto"])
    assert silent == []


def test_the_audio_encoder_option_lists_its_choices() -> None:
    """A choice option shows its allowed values (README: taken from the typed configs), not `<str>`."""
    output = CliRunner().invoke(app, ["audio", "run", "--help"], env={"COLUMNS": "200"}).output
    assert "[logmel_stats|cnn14]" in output
