"""`howto tasks import`: a file with no task titles is refused (and --replace then removes nothing); after
an import, with or without --replace, `howto query` sees the new tasks at once, without a catalog refresh."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app

runner = CliRunner()


def _count_tasks(root: Path) -> int:
    result = runner.invoke(
        app, ["query", "SELECT count(*) AS n FROM tasks", "--format", "json", "--data-root", str(root)]
    )
    assert result.exit_code == 0, result.output
    return int(json.loads(result.stdout)[0]["n"])


def _import(path: Path, root: Path, *args: str) -> object:
    return runner.invoke(
        app, ["tasks", "import", str(path), "--format", "lines", "--data-root", str(root), *args]
    )


@pytest.mark.parametrize(
    ("fmt", "content"),
    [("lines", ""), ("lines", "\n  \n"), ("howto100m", ""), ("csv", "id,title\n"), ("csv", "id,title\n7,\n")],
    ids=["empty", "blank-lines", "empty-howto100m", "csv-header-only", "csv-no-titles"],
)
def test_a_list_without_tasks_is_refused_and_replace_removes_nothing(
    tmp_path: Path, fmt: str, content: str
) -> None:
    root = tmp_path / "root"
    tasks = tmp_path / "tasks.txt"
    tasks.write_text("Make Pancakes\nGrill Fish\n", encoding="utf-8")
    assert _import(tasks, root).exit_code == 0
    empty = tmp_path / "empty.txt"
    empty.write_text(content, encoding="utf-8")
    for extra in ([], ["--replace"]):
        result = runner.invoke(
            app, ["tasks", "import", str(empty), "--format", fmt, "--data-root", str(root), *extra]
        )
        assert result.exit_code == 2, result.output
        assert (
            result.stderr
            == f"error: {empty}: no task titles found (format {fmt}); nothing imported or removed\n"
        )
    assert _count_tasks(root) == 2


def test_query_sees_an_import_at_once(tmp_path: Path) -> None:
    root = tmp_path / "root"
    first, second, third = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "c.txt"
    first.write_text("Make Pancakes\nGrill Fish\n", encoding="utf-8")
    second.write_text("Bake Bread\n", encoding="utf-8")
    third.write_text("Fold Paper\nSew a Seam\nPaint a Wall\n", encoding="utf-8")
    assert _import(first, root).exit_code == 0
    assert _count_tasks(root) == 2  # the catalog exists from here on
    assert _import(second, root).exit_code == 0
    assert _count_tasks(root) == 3  # appended: the new shard is in the view
    result = _import(third, root, "--replace")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["replaced_shards"] == 2
    assert _count_tasks(root) == 3  # the removed shards left the view, the new one is in it


def test_a_csv_field_past_the_csv_modules_limit_is_one_line(tmp_path: Path) -> None:
    """A title of more than 128 KiB in a --format csv list ended in _csv.Error's traceback."""
    path = tmp_path / "tasks.csv"
    path.write_text('id,title\n1,Make bread\n2,"' + "a" * 200_000 + '"\n')
    result = runner.invoke(
        app, ["tasks", "import", str(path), "--format", "csv", "--data-root", str(tmp_path / "d")]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert result.stderr == f"error: {path}: after line 2: field larger than field limit (131072)\n"
    assert not (tmp_path / "d").exists()
