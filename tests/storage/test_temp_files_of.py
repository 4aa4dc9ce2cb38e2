"""Leftovers of killed writes removed by the target's name: only the files a caller owns, on a local folder and
on an object store (moto's server on loopback), where only the keys under the temp prefix are listed."""

from __future__ import annotations

from pathlib import Path

from storage.atomic import atomic_write_bytes, remove_temp_files_of, temp_files, temp_path_for, temp_target
from storage.layout import DataRoot
from tests.moto_s3 import moto_s3


def test_temp_target_is_the_name_the_temp_file_was_written_for() -> None:
    assert temp_target(temp_path_for("/r/vtt/abcdefghijk.en-GB.vtt")) == "abcdefghijk.en-GB.vtt"
    assert temp_target("/r/vtt/abcdefghijk.en.vtt") is None
    assert temp_target("/r/vtt/.tmp-short-abcdefghijk.en.vtt") is None  # not a uuid: another writer's name


def _leftovers(root: DataRoot) -> tuple[list[str], list[str]]:
    """Two killed writes of `mine.*` and one of `theirs.*` in <root>/vtt, beside a finished file."""
    folder = root.path("vtt")
    atomic_write_bytes(root, f"{folder}/mine.en.vtt", b"WEBVTT\n")
    mine = [temp_path_for(f"{folder}/mine.en.vtt"), temp_path_for(f"{folder}/mine.fr.vtt")]
    theirs = [temp_path_for(f"{folder}/theirs.en.vtt")]
    for path in mine + theirs:
        with root.open(path, "wb") as handle:
            handle.write(b"half")
    return mine, theirs


def _check(root: DataRoot) -> None:
    folder = root.path("vtt")
    mine, theirs = _leftovers(root)
    names = [p.rsplit("/", 1)[1] for p in temp_files(root, folder)]
    assert sorted(names) == sorted(p.rsplit("/", 1)[1] for p in mine + theirs)
    removed = remove_temp_files_of(root, folder, lambda name: name.startswith("mine."))
    assert sorted(p.rsplit("/", 1)[1] for p in removed) == sorted(p.rsplit("/", 1)[1] for p in mine)
    left = sorted(p.rsplit("/", 1)[1] for p in root.fs.ls(folder, detail=False))
    assert left == sorted([theirs[0].rsplit("/", 1)[1], "mine.en.vtt"])
    assert temp_files(root, root.path("nothing-here")) == []


def test_local_folder(tmp_path: Path) -> None:
    _check(DataRoot.from_any(tmp_path / "root"))


def test_object_store(tmp_path: Path) -> None:
    with moto_s3(tmp_path / "moto.log", "howto-temp"):
        _check(DataRoot.from_any("s3://howto-temp/root"))
