"""A data root that is a file, read-only, full or missing: one line naming the root, exit 2, nothing lost.

Full and read-only roots are real tmpfs mounts (skipped where mounting is not allowed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.atomic import TMP_PREFIX
from storage.layout import DataRoot, DataRootProblem, check_data_root
from storage.shards import is_done, read_dataset, read_marker, write_shard
from tests.storage.test_shards import clips_table
from tests.storage.tmpfs import tmpfs

HOWTO = str(Path(sys.executable).with_name("howto"))


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs: a real file system that runs out of space."""
    with tmpfs(tmp_path / "small", "size=4m") as mount:
        yield mount


@pytest.fixture()
def read_only(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "ro", "size=4m", "ro") as mount:
        yield mount


def _howto(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HOWTO, *args], capture_output=True, text=True, timeout=300)


def _one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_root_that_is_a_file_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.write_text("not a folder")
    with pytest.raises(DataRootProblem, match="is a file, not a folder"):
        check_data_root(DataRoot.from_any(root))
    for args in (["stats"], ["query", "SELECT 1"], ["pipeline", "--stage", "tasks"]):
        _one_line_error(_howto(*args, "--data-root", str(root)), str(root), "is a file")
    assert root.read_text() == "not a folder"


def test_read_commands_refuse_a_missing_root_and_create_nothing(tmp_path: Path) -> None:
    root = tmp_path / "typo"
    for args in (["stats"], ["query", "SELECT 1"]):
        _one_line_error(_howto(*args, "--data-root", str(root)), str(root), "no data root at")
    assert not root.exists()


def test_an_object_store_root_without_credentials_is_named_in_one_line(tmp_path: Path) -> None:
    """No AWS credentials anywhere: every command used to end in botocore's NoCredentialsError traceback
    (exit 1); the root's first listing now says it in one line, exit 2, before any work."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",  # no instance-role lookup on loopback
    )
    tasks = tmp_path / "tasks.txt"
    tasks.write_text("Make Pancakes\n")
    url = "s3://howto-no-credentials/root"
    for args in (["stats"], ["query", "SELECT 1"], ["tasks", "import", str(tasks), "--format", "lines"]):
        proc = subprocess.run([HOWTO, *args, "--data-root", url], capture_output=True, text=True, timeout=300,
                              env=env)  # fmt: skip
        _one_line_error(proc, f"data root {url} cannot be read", "NoCredentialsError")


def test_read_only_root_is_named_not_the_input(read_only: Path, tmp_path: Path) -> None:
    with pytest.raises(DataRootProblem, match="is not writable"):
        check_data_root(DataRoot.from_any(read_only))
    tasks = tmp_path / "tasks.txt"
    tasks.write_text("Make Pancakes\n")
    proc = _howto("tasks", "import", str(tasks), "--format", "lines", "--data-root", str(read_only))
    _one_line_error(proc, str(read_only), "not writable")
    assert str(tasks) not in proc.stderr


def test_full_root_is_refused_up_front(small_disk: Path, tmp_path: Path) -> None:
    with pytest.raises(DataRootProblem, match="MiB free"):
        check_data_root(DataRoot.from_any(small_disk))
    tasks = tmp_path / "tasks.txt"
    tasks.write_text("Make Pancakes\n")
    proc = _howto("tasks", "import", str(tasks), "--format", "lines", "--data-root", str(small_disk))
    _one_line_error(proc, str(small_disk), "free")


def test_write_that_runs_out_of_space_leaves_nothing_and_next_run_completes(small_disk: Path) -> None:
    root = DataRoot.from_any(small_disk)
    write_shard(root, "clips", 0, clips_table(["a" * 11]), config_hash="h", code_version="x", rows_in=1)
    filler = small_disk / "filler"
    with pytest.raises(OSError):  # fill the disk to the last byte
        with open(filler, "wb") as handle:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
    big = clips_table(["b" * 11] * 2000)
    with pytest.raises(OSError):
        write_shard(root, "clips", 1, big, config_hash="h", code_version="x", rows_in=2000)
    directory = Path(root.dataset_dir("clips", 1))
    assert not list(directory.rglob(f"{TMP_PREFIX}*")), "a failed write left a temp file"
    assert read_marker(root, "clips", 1) is None and read_dataset(root, "clips").count_rows() == 1
    filler.unlink()
    write_shard(root, "clips", 1, big, config_hash="h", code_version="x", rows_in=2000)
    assert is_done(root, "clips", 1, "h") and read_dataset(root, "clips").count_rows() == 2001
