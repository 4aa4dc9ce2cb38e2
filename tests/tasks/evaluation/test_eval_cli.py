"""`howto eval`: a missing, truncated or wrong-format benchmark file is one line naming it, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from flows.cli import app

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "benchmarks"


def _howto(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _one_line_exit_2(out: Result) -> str:
    assert out.exit_code == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert out.exception is None or isinstance(out.exception, SystemExit)  # no traceback
    assert out.stdout == ""
    return lines[0]


@pytest.fixture(autouse=True)
def root(tmp_path: Path) -> Path:
    # Evaluation reads (and records into) an existing data root; a missing one is refused up front.
    folder = tmp_path / "root"
    folder.mkdir()
    return folder


@pytest.fixture
def videos(tmp_path: Path) -> Path:
    folder = tmp_path / "videos"
    folder.mkdir()
    return folder


def test_truncated_youcook2_annotations(tmp_path: Path, videos: Path) -> None:
    path = tmp_path / "youcookii_annotations_trainval.json"
    text = (FIXTURES / "youcook2" / "youcookii_annotations_trainval.json").read_text()
    path.write_text(text[: len(text) - 200])
    line = _one_line_exit_2(_howto("eval", "youcook2", "--annotations", str(path), "--videos", str(videos),
                                   "--data-root", str(tmp_path / "root")))  # fmt: skip
    assert str(path) in line and "not valid JSON" in line


def test_wrong_format_msrvtt_csv_and_missing_pth(tmp_path: Path) -> None:
    csv = tmp_path / "MSRVTT_JSFUSION_test.csv"
    csv.write_text("id,caption\n1,a dog\n")
    line = _one_line_exit_2(_howto("eval", "msrvtt", "--csv", str(csv), "--features", str(tmp_path / "x.pth"),
                                   "--data-root", str(tmp_path / "root")))  # fmt: skip
    assert str(csv) in line and "video_id" in line
    good = FIXTURES / "msrvtt" / "MSRVTT_JSFUSION_test.csv"
    missing = tmp_path / "MSRVTT_JSFUSION_test.pth"
    line = _one_line_exit_2(_howto("eval", "msrvtt", "--csv", str(good), "--features", str(missing),
                                   "--data-root", str(tmp_path / "root")))  # fmt: skip
    assert str(missing) in line and "no such file" in line


def test_truncated_crosstask_release(tmp_path: Path, videos: Path) -> None:
    release = tmp_path / "crosstask_release"
    release.mkdir()
    text = (FIXTURES / "crosstask" / "tasks_primary.txt").read_text()
    (release / "tasks_primary.txt").write_text(text[:-40])
    (release / "videos.csv").write_text("23521,abc,https://www.youtube.com/watch?v=abc\n")
    line = _one_line_exit_2(_howto("eval", "crosstask", "--release", str(release), "--videos", str(videos),
                                   "--split", "all", "--data-root", str(tmp_path / "root")))  # fmt: skip
    assert str(release / "tasks_primary.txt") in line
    (release / "tasks_primary.txt").write_text(text)
    line = _one_line_exit_2(_howto("eval", "crosstask", "--release", str(release), "--videos", str(videos),
                                   "--split", "all", "--data-root", str(tmp_path / "root")))  # fmt: skip
    assert "annotations" in line  # no annotation file for the listed video


def test_no_checkpoint_is_one_line(tmp_path: Path) -> None:
    line = _one_line_exit_2(_howto("eval", "heldout", "--data-root", str(tmp_path / "root")))
    assert "no checkpoint" in line
