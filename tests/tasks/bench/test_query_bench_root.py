"""`howto bench query` writes synthetic clips only into a new, empty or bench-filled folder: pointed at a
real data root it refuses in one line and leaves the root's datasets as they were."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from flows.cli import app
from storage.layout import DataRoot
from storage.shards import read_dataset
from tests.storage.catalog_data import build_root

runner = CliRunner()


def _files(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_a_real_data_root_is_refused_and_left_alone(tmp_path: Path) -> None:
    root = build_root(tmp_path)
    before = _files(Path(root.url))
    out = runner.invoke(app, ["bench", "query", "--rows", "500", "--data-root", root.url])
    assert out.exit_code == 2, out.output
    assert out.stderr.startswith(f"error: --data-root {root.url}: already holds ") and "clips" in out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.output
    assert _files(Path(root.url)) == before
    assert read_dataset(root, "clips").count_rows() == 6


def test_a_users_folder_and_a_file_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    plain = tmp_path / "plain"
    plain.write_text("a file")
    for target, needle in ((folder, "already holds notes.txt"), (plain, "exists and is not a folder")):
        out = runner.invoke(app, ["bench", "query", "--rows", "500", "--data-root", str(target)])
        assert out.exit_code == 2 and needle in out.stderr, out.output
    assert _files(folder) == {"notes.txt": b"keep me"} and plain.read_text() == "a file"


def test_a_new_folder_is_the_benchs_and_may_be_refilled(tmp_path: Path) -> None:
    target = tmp_path / "bench"
    for _ in range(2):  # the second run finds the bench's own root
        out = runner.invoke(app, ["bench", "query", "--rows", "500", "--data-root", str(target)])
        assert out.exit_code == 0, out.output
        assert "c: full-text LIKE count" in out.stdout
    assert read_dataset(DataRoot.from_any(target), "clips").count_rows() == 500
