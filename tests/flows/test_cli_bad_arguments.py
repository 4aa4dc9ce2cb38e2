"""Arguments refused in one line, exit 2, before any work: data root URLs of an unknown protocol (and
file:// ones taken as the local folder), text that is not UTF-8, a bench --workdir holding a real
release, a non-positive bench --seconds, and a folder given where a file is read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from storage.layout import DataRoot, DataRootProblem, check_data_root
from tests.flows.cli_checks import invoke, one_error_line
from tests.storage.catalog_data import build_root

HOWTO = str(Path(sys.executable).with_name("howto"))
runner = CliRunner()


# -- data root URLs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", [["query", "select 1"], ["stats"], ["tasks", "mine", "--max-articles", "1"]]
)
def test_an_unknown_protocol_names_the_url(command: list[str]) -> None:
    one_error_line(invoke(*command, "--data-root", "foo://bar"), "foo://bar", "unknown protocol 'foo'")


def test_a_file_url_is_the_local_folder(tmp_path: Path) -> None:
    root = build_root(tmp_path)
    url = f"file://{root.url}"
    assert DataRoot.from_any(url) == root
    check_data_root(DataRoot.from_any(url), write=False)
    result = invoke("query", "--format", "json", "--data-root", url, "select count(*) as n from videos")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"n": 2}]


def test_a_file_url_of_a_missing_folder_names_the_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(DataRootProblem, match=f"no data root at {missing}$"):
        check_data_root(DataRoot.from_any(f"file://{missing}"), write=False)


# -- text that is not UTF-8 --------------------------------------------------------------------------------


def test_query_text_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    root = build_root(tmp_path)
    # What Python makes of the bytes `select '\xff'` on the command line: a lone surrogate.
    result = invoke("query", "--data-root", root.url, "select '\udcff'")
    one_error_line(result, "SQL", "not valid UTF-8")


def test_search_text_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    result = invoke("search-clips", "--data-root", str(tmp_path), "\udcff\udcfe")
    one_error_line(result, "query", "not valid UTF-8")


def test_real_command_line_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    # The bytes as a shell passes them ($'select \'\xff\''), through the real entry point.
    root = build_root(tmp_path)
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    out = subprocess.run([HOWTO, "query", "--data-root", root.url, b"select '\xff'"], capture_output=True,
                         env=env, timeout=120)  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert b"Traceback" not in out.stderr and b"not valid UTF-8" in out.stderr


# -- bench import --workdir, bench captions --seconds -------------------------------------------------------


def test_bench_import_refuses_a_workdir_that_holds_a_release(tmp_path: Path) -> None:
    release = {"HowTo100M_v1.csv": "video_id,category_1\nreal,Food\n", "caption.json": '{"real": {}}',
               "task_ids.csv": "1\tReal task\n"}  # fmt: skip
    for name, text in release.items():
        (tmp_path / name).write_text(text)
    result = invoke("bench", "import", "--gb", "0.001", "--workdir", str(tmp_path))
    one_error_line(result, "--workdir", str(tmp_path), "already holds")
    assert {name: (tmp_path / name).read_text() for name in release} == release


def test_bench_import_refuses_a_workdir_that_is_a_file(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    one_error_line(
        invoke("bench", "import", "--gb", "0.001", "--workdir", str(afile)), "--workdir", "not a folder"
    )
    one_error_line(
        invoke("bench", "import", "--gb", "0.001", "--workdir", str(afile / "sub")), "--workdir", "is a file"
    )


def test_bench_import_takes_a_new_workdir_and_its_own_again(tmp_path: Path) -> None:
    workdir = tmp_path / "bench"
    for _ in range(2):  # the second run finds its own marker and writes over its own files
        result = invoke("bench", "import", "--gb", "0.001", "--workdir", str(workdir))
        assert result.exit_code == 0, result.output
        assert "imported:" in result.stdout


@pytest.mark.parametrize("seconds", ["-1", "0", "nan", "inf"])
def test_bench_captions_refuses_non_positive_seconds(seconds: str) -> None:
    one_error_line(invoke("bench", "captions", "--seconds", seconds), "--seconds")


# -- a folder where a file is read --------------------------------------------------------------------------


def test_a_folder_given_as_a_file_says_it_is_a_directory(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    folder = tmp_path / "in"
    folder.mkdir()
    root = str(tmp_path / "data")
    one_error_line(
        invoke("videos", "import", "--data-root", root, str(folder)), str(folder), "is a directory"
    )
    for option in ("--csv", "--task-ids", "--captions"):
        files = {"--csv": str(afile), "--task-ids": str(afile), "--captions": str(afile), option: str(folder)}
        args = [part for pair in files.items() for part in pair]
        result = invoke("import", "howto100m", "--data-root", root, *args)
        one_error_line(result, str(folder), "is a directory", option)


@pytest.mark.parametrize(
    ("command", "flag"),
    [
        (["audio", "fac", "--lambda-va"], "--lambda-va"),
        (["audio", "fac", "--lambda-vt"], "--lambda-vt"),
        (["bench", "import", "--gb"], "--gb"),
        (["bench", "captions", "--seconds"], "--seconds"),
        (["bench", "train", "--ceiling-seconds"], "--ceiling-seconds"),
    ],
)
def test_an_infinite_number_is_refused(command: list[str], flag: str, tmp_path: Path) -> None:
    """typer's range check (`min=`) lets inf through: `audio fac --lambda-va inf` trained FAC to NaN weights
    and wrote them over the root's checkpoint, `bench import --gb inf` wrote until the disk was full."""
    root = build_root(tmp_path)
    extra = ["--data-root", root.url] if command[0] == "audio" else []
    for value in ("inf", "nan"):
        one_error_line(invoke(*command, value, *extra), flag)
    assert not (tmp_path / "data" / "train").exists()
