"""Scraped text (titles, categories, captions) printed by the CLI is shown, never obeyed: its terminal control
sequences come out as escapes and its brackets as text, not as Rich markup."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.cli_errors import one_line
from flows.terminal_text import terminal_safe
from storage.catalog import refresh
from storage.layout import DataRoot
from storage.shards import write_shard
from tests.storage.catalog_data import rows_table
from tests.storage.test_shards import clips_table

runner = CliRunner()
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

# Sets the window title, clears the screen, draws a link; then Rich markup a title may hold as text.
HOSTILE = "Fix \x1b]0;owned\x07\x1b[2J\x1b]8;;https://evil.example\x1b\\a bike\x1b]8;;\x1b\\ \u202efdp.exe"
MARKUP = "[link=https://evil.example]Grill fish[/link] [/] [bold]now"


def _write(root: DataRoot, dataset: str, table: pa.Table) -> None:
    write_shard(root, dataset, 0, table, config_hash="h", code_version="x", rows_in=table.num_rows)


@pytest.fixture()
def root(tmp_path: Path) -> DataRoot:
    root = DataRoot.from_any(tmp_path / "data")
    videos = [
        {"video_id": "0" * 11, "title": HOSTILE, "keep": True, "status": "ok", "crawl_id": "c0"},
        {"video_id": "1" * 11, "title": MARKUP, "keep": True, "status": "ok", "crawl_id": "c0"},
    ]
    _write(root, "videos", rows_table("videos", videos))
    clips = clips_table(["0" * 11, "1" * 11])
    clips = clips.set_column(
        clips.schema.get_field_index("category"), "category", pa.array([HOSTILE, MARKUP])
    )
    _write(root, "clips", clips)
    refresh(root)
    return root


def _no_control_characters(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text, repr(text)


def test_query_table_shows_titles_escaped_and_markup_as_text(root: DataRoot) -> None:
    result = runner.invoke(
        app, ["query", "SELECT title FROM videos ORDER BY video_id", "--data-root", root.url]
    )
    assert result.exit_code == 0, result.output
    _no_control_characters(result.output)
    assert "\\x1b]0;owned\\x07" in result.output and "\\u202e" in result.output
    assert MARKUP in result.output  # every bracket kept: no hidden link, nothing eaten as a tag


def test_query_column_names_are_text_not_markup(root: DataRoot) -> None:
    result = runner.invoke(app, ["query", 'SELECT 1 AS "[/]"', "--data-root", root.url])
    assert result.exit_code == 0, result.output
    assert "[/]" in result.output


def test_query_csv_and_json_keep_the_data_as_it_is(root: DataRoot) -> None:
    sql = "SELECT title FROM videos ORDER BY video_id"
    csv_out = runner.invoke(app, ["query", sql, "--format", "csv", "--data-root", root.url])
    assert csv_out.exit_code == 0 and HOSTILE in csv_out.output  # a file of the rows is the data, untouched


def test_stats_shows_categories_escaped_and_markup_as_text(root: DataRoot) -> None:
    result = runner.invoke(app, ["stats", "--data-root", root.url])
    assert result.exit_code == 0, result.output
    _no_control_characters(result.output)
    assert "\\x1b[2J" in result.output
    assert MARKUP in result.output


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain title, 如何制作 café", "plain title, 如何制作 café"),
        ("a\x1b[31mred", "a\\x1b[31mred"),
        ("csi\x9b2J del\x7f nul\x00 cr\r", "csi\\x9b2J del\\x7f nul\\x00 cr\\x0d"),
        ("tab\tline\nnext", "tab\\x09line\\x0anext"),
        ("\u202eabc\u2066", "\\u202eabc\\u2066"),
    ],
)
def test_terminal_safe_escapes_every_control_character(text: str, shown: str) -> None:
    assert terminal_safe(text) == shown


def test_terminal_safe_keeps_lines_for_table_cells() -> None:
    assert terminal_safe("tab\tline\nnext\r\x1b", keep_lines=True) == "tab\tline\nnext\\x0d\\x1b"


def test_captions_parse_shows_cue_text_escaped(tmp_path: Path) -> None:
    vtt = tmp_path / "uploaded.en.vtt"
    vtt.write_text(
        "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nadd \x1b]0;owned\x07the salt\n", encoding="utf-8"
    )
    result = runner.invoke(app, ["captions", "parse", str(vtt)])
    assert result.exit_code == 0, result.output
    _no_control_characters(result.output)
    assert "add \\x1b]0;owned\\x07the salt" in result.output


def test_wikihow_parse_shows_page_text_escaped(tmp_path: Path) -> None:
    page = (FIXTURES / "wikihow" / "grill-fish.html").read_text(encoding="utf-8")
    page = page.replace(">How to Grill Fish<", ">How to Grill \x1b]0;owned\x07Fish<", 1)
    saved = tmp_path / "page.html"
    saved.write_text(page, encoding="utf-8")
    result = runner.invoke(app, ["wikihow", "parse", str(saved)])
    assert result.exit_code == 0, result.output
    _no_control_characters(result.output)
    assert "title: Grill \\x1b]0;owned\\x07Fish" in result.output


def test_an_error_line_shows_quoted_text_escaped() -> None:
    assert one_line(ValueError("bad title 'a\x1b[2Jb\u202ec'")) == "bad title 'a\\x1b[2Jb\\u202ec'"


def test_search_clips_shows_captions_escaped(tmp_path: Path) -> None:
    from flows.train_embedding import train_embedding
    from tasks.synthetic.training import write_synthetic_root
    from tasks.train.config import TrainConfig

    captions = [
        "stir the \x1b]0;owned\x07blue bowl",
        "cut the red box",
        "fold the green cloth",
        "pour the tea",
    ]
    write_synthetic_root(tmp_path, n_videos=8, n_steps=4, clips_per_video=4, dim=64, captions=captions)
    train_embedding(
        TrainConfig(d=16, epochs=1, heldout_fraction=0.25, videos_per_batch=4, text="learned"), str(tmp_path)
    )
    result = runner.invoke(
        app, ["search-clips", "stir the blue bowl", "--k", "32", "--data-root", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    _no_control_characters(result.output)
    assert "stir the \\x1b]0;owned\\x07blue bowl" in result.output
