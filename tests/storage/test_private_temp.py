"""A remote root's work folders in the temp space are this user's alone: a folder another user planted at
the name (open to others, theirs, or a link) is refused, never used."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from storage.catalog import spill_directory
from storage.layout import DataRoot
from storage.private_temp import UnsafeTempFolder
from tasks.audio.sources import keep_track, track_dir
from tasks.demo.benchmarks import demo_benchmark_dir
from tasks.features.downloads import video_dir
from tasks.youtube.video_download import existing_download

REMOTE = DataRoot.from_any("memory://bucket/howto")
VIDEO = "dQw4w9WgXcQ"


@pytest.fixture(autouse=True)
def temp_space(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    space = tmp_path / "tmp"
    space.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(space))  # what gettempdir() answers
    return space


def _planted(space: Path, name: str) -> list[Path]:
    """A folder open to everyone at the name the stages used (and at this user's name), holding a video."""
    folders = [space / name, space / f"{name}-{os.getuid()}"]
    for folder in folders:
        folder.mkdir()
        folder.chmod(0o777)
        (folder / f"{VIDEO}.mp4").write_bytes(b"someone else's video")
    return folders


def test_a_new_work_folder_is_made_for_this_user_alone(temp_space: Path) -> None:
    folder = video_dir(REMOTE)
    info = os.lstat(folder)
    assert folder.parent == temp_space and stat.S_ISDIR(info.st_mode)
    assert info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) == 0o700
    assert video_dir(REMOTE) == folder  # found again by the next stage


def test_downloads_planted_in_a_folder_open_to_others_are_never_reused(temp_space: Path) -> None:
    _planted(temp_space, "howto-videos")
    with pytest.raises(UnsafeTempFolder, match="open to other users"):
        existing_download(video_dir(REMOTE), VIDEO)


def test_a_track_folder_that_is_a_link_is_not_written_through(temp_space: Path, tmp_path: Path) -> None:
    yours = tmp_path / "yours"
    yours.mkdir()
    (yours / f"{VIDEO}.noaudio").symlink_to(tmp_path / "precious.txt")
    (tmp_path / "precious.txt").write_text("keep me")
    for name in ("howto-audio", f"howto-audio-{os.getuid()}"):
        (temp_space / name).symlink_to(yours)
    video = tmp_path / "silent.mp4"
    video.write_bytes(b"")
    with pytest.raises(UnsafeTempFolder, match="symbolic link"):
        keep_track(video, track_dir(REMOTE), VIDEO)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_another_users_folder_is_refused(temp_space: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("giving a folder to another user needs root")
    for name in ("howto-demo-benchmarks", f"howto-demo-benchmarks-{os.getuid()}"):
        (temp_space / name).mkdir(mode=0o700)
        os.chown(temp_space / name, 65534, 65534)
    with pytest.raises(UnsafeTempFolder, match="owned by another user"):
        demo_benchmark_dir(REMOTE)


def test_spill_folder_beside_a_catalog_that_cannot_be_written_is_private(
    temp_space: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = str(tmp_path / "ro" / "catalog.duckdb")
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # a read-only root, whoever runs the test
    spill = Path(spill_directory(catalog))
    assert spill.parent == temp_space / f"howto-spill-{os.getuid()}"
    assert stat.S_IMODE(os.lstat(spill.parent).st_mode) == 0o700


def test_the_cli_says_it_in_one_line() -> None:
    from flows.cli_errors import expected_types

    assert UnsafeTempFolder in expected_types()  # one line naming the folder and the fix, exit 2
