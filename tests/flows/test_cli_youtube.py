"""`howto youtube inspect` and `howto videos import`: output shape and one-line errors with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from flows.cli import app

FIXTURES = Path(__file__).parents[1] / "fixtures" / "ytdlp_info"
runner = CliRunner()


def test_inspect_json_on_recent_and_old_files() -> None:
    recent = runner.invoke(
        app, ["youtube", "inspect", str(FIXTURES / "yt-dlp-2023_QW3-5OuWn4M.info.json"), "--json"]
    )
    assert recent.exit_code == 0
    assert json.loads(recent.stdout) == {
        "video_id": "QW3-5OuWn4M",
        "duration_s": 122.0,
        "view_count": 116,
        "caption": {"lang": "en", "kind": "auto"},
        "keep": True,
        "drop_reason": None,
    }
    old = runner.invoke(
        app, ["youtube", "inspect", str(FIXTURES / "youtube-dl-2018_by0e4didQpM.info.json"), "--json"]
    )
    assert json.loads(old.stdout)["drop_reason"] == "no_english_captions"
    text = runner.invoke(app, ["youtube", "inspect", str(FIXTURES / "yt-dlp-2023_QW3-5OuWn4M.info.json")])
    assert "en (auto)" in text.stdout and "keep:        True" in text.stdout


def test_inspect_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.info.json"
    bad.write_text('{"id": ')
    playlist = tmp_path / "pl.info.json"
    playlist.write_text('{"_type": "playlist", "entries": []}')
    # RecursionError and the int conversion limit's ValueError came out of json.loads as tracebacks
    deep = tmp_path / "deep.info.json"
    deep.write_text('{"id": "nVbIUDjzWY4", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    digits = tmp_path / "digits.info.json"
    digits.write_text('{"id": "nVbIUDjzWY4", "duration": 1' + "0" * 5000 + "}")
    for path in (bad, playlist, tmp_path / "missing.json", deep, digits):
        result = runner.invoke(app, ["youtube", "inspect", str(path)])
        assert result.exit_code == 2
        assert result.stderr.startswith(f"error: {path}: ") and result.stderr.count("\n") == 1
        assert "Traceback" not in result.output


def test_inspect_refuses_a_playlist_file_without_type() -> None:
    playlist = FIXTURES / "yt-dlp-2021_playlist_PLoopXDarluPBnuxs4PTC55Sc_2ShAXC0i.info.json"
    result = runner.invoke(app, ["youtube", "inspect", str(playlist), "--json"])
    assert result.exit_code == 2 and result.stdout == ""
    why = "a yt-dlp YoutubeTab (playlist or channel) file, not a probed video"
    assert result.stderr == f"error: {playlist}: not a single-video info dict: {why}\n"


def test_import_refuses_files_without_ids(tmp_path: Path) -> None:
    junk = tmp_path / "ids.txt"
    junk.write_text("../../etc/passwd\nnot an id\n")
    result = runner.invoke(app, ["videos", "import", str(junk), "--data-root", str(tmp_path / "d")])
    assert result.exit_code == 2 and "no video ids" in result.stderr
    missing = runner.invoke(app, ["videos", "import", str(tmp_path / "nope.txt")])
    assert missing.exit_code == 2 and "no such file" in missing.stderr


def test_import_of_a_csv_the_csv_module_cannot_read_is_one_line(tmp_path: Path) -> None:
    """A HowTo100M_v1.csv-shaped file with a field of more than 128 KiB ended in _csv.Error's traceback."""
    path = tmp_path / "HowTo100M_v1.csv"
    path.write_text('video_id,category_1\nnVbIUDjzWY4,Food\n"' + "a" * 200_000 + '",Food\n')
    result = runner.invoke(app, ["videos", "import", str(path), "--data-root", str(tmp_path / "d")])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert (
        result.stderr == f"error: {path}: cannot read: after line 2: field larger than field limit (131072)\n"
    )
    assert not (tmp_path / "d").exists()
