"""`howto query` and `howto stats` on a folder that holds no dataset say it is not a data root (exit 2),
instead of answering from empty views as if the datasets had no rows; and write nothing there."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from flows.cli import app
from tests.storage.catalog_data import build_root

runner = CliRunner()


def test_a_folder_without_datasets_is_not_a_data_root(tmp_path: Path) -> None:
    folder = tmp_path / "not-a-root"
    folder.mkdir()
    (folder / "notes.txt").write_text("a user's file")
    for args in (["query", "SELECT count(*) FROM clips"], ["stats"]):
        result = runner.invoke(app, [*args, "--data-root", str(folder)])
        assert result.exit_code == 2, result.output
        assert result.stderr == (
            f"error: {folder} is not a data root: it holds no datasets (run a stage first, or check --data-root)\n"
        )
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_a_data_root_is_still_queried(tmp_path: Path) -> None:
    root = build_root(tmp_path)
    result = runner.invoke(
        app, ["query", "--data-root", root.url, "--format", "csv", "SELECT count(*) AS n FROM clips"]
    )
    assert result.exit_code == 0 and result.stdout.splitlines() == ["n", "6"]
