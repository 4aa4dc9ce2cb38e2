"""`howto captions parse` output and errors, and `howto bench captions`."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from flows.cli import app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vtt"
runner = CliRunner()


def test_parse_json_lines() -> None:
    result = runner.invoke(app, ["captions", "parse", str(FIXTURES / "rolling_current.en.vtt"), "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0] == {"language": "en", "kind": "auto", "segments": 7, "words": 40, "dropped_tags": 0}
    assert lines[1] == {"start_ms": 80, "end_ms": 1309, "text": "when I started working on embedded"}
    assert len(lines) == 1 + 7 and all(set(x) == {"start_ms", "end_ms", "text"} for x in lines[1:])


def test_parse_text_and_options() -> None:
    path = str(FIXTURES / "overlapping_2017_guardian.en.vtt")
    result = runner.invoke(app, ["captions", "parse", path, "--keep-non-speech"])
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == "language=en kind=auto segments=3 words=10 dropped_tags=0"
    assert "00:00:00.730 --> 00:00:02.240  [Music]" in result.stdout


def test_malformed_input_yielding_nothing_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.vtt"
    bad.write_bytes(b"\x00\xffnot a caption file")
    result = runner.invoke(app, ["captions", "parse", str(bad), "--json"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith(f"error: {bad}: no caption cues could be read")


def test_missing_file_and_bad_kind_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["captions", "parse", str(tmp_path / "nope.vtt")])
    assert result.exit_code == 2 and result.stderr.strip() == f"error: {tmp_path / 'nope.vtt'}: no such file"
    result = runner.invoke(
        app, ["captions", "parse", str(FIXTURES / "rolling_current.en.vtt"), "--kind", "x"]
    )
    assert result.exit_code == 2 and "'x' is not one of auto, manual" in result.stderr


def test_partly_broken_file_warns_and_reads_the_rest(tmp_path: Path) -> None:
    part = tmp_path / "part.vtt"
    part.write_text("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nhello\n\n00:00:99.000 --> 00:00:03.000\nbad\n")
    result = runner.invoke(app, ["captions", "parse", str(part), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout.splitlines()[1])["text"] == "hello"
    assert "warning:" in result.stderr and "malformed" in result.stderr


def test_bench_captions_prints_both_tracks() -> None:
    result = runner.invoke(app, ["bench", "captions", "--seconds", "0.01", "--long-minutes", "20"])
    assert result.exit_code == 0, result.output
    assert "6-minute auto track" in result.stdout and "20-minute auto track" in result.stdout
    rates = [
        float(line.split()[-3])
        for line in result.stdout.splitlines()
        if " ours " in line or " naive " in line
    ]
    assert len(rates) == 4 and all(r > 0 for r in rates)
