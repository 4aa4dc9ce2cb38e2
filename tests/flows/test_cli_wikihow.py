"""`howto wikihow parse`, `howto tasks import` and `howto tasks mine`: output, and one-line errors with exit 2."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from storage.layout import DataRoot
from storage.shards import read_dataset
from tasks.demo.content import ARTICLES
from tasks.demo.site import DemoSite
from tasks.demo.world import World

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "wikihow"
runner = CliRunner()


def test_parse_json_of_a_real_page() -> None:
    result = runner.invoke(app, ["wikihow", "parse", str(FIXTURES / "grill-flank-steak.html"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["title"] == "Grill Flank Steak"
    assert data["categories"][0] == "Steak Dishes" and data["categories"][-1] == "Food and Entertaining"
    assert [m["name"] for m in data["methods"]][0] == "Scoring and Seasoning the Meat"
    assert data["n_steps"] == 15 == sum(len(m["steps"]) for m in data["methods"])


def test_parse_plain_output() -> None:
    result = runner.invoke(app, ["wikihow", "parse", str(FIXTURES / "grill-fish.html")])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:3] == [
        "title: Grill Fish",
        "categories: Barbecue Fish < Barbecue < Food and Entertaining",
        "steps: 19 in 3 method(s)",
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"<html><head><title>Cats</title></head><body><p>meow</p></body></html>", "not a wikiHow article"),
        (
            b"<html><body><div class='section steps'><ol class='steps_list_2'><li><div cl",
            "not a wikiHow article",
        ),
        ("<html>Cr\u00e8me br\u00fbl\u00e9e</html>".encode("latin-1"), "not UTF-8"),
    ],
    ids=["empty", "not-wikihow", "broken-html", "non-utf8"],
)
def test_parse_bad_input_is_one_line_exit_2(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "page.html"
    path.write_bytes(content)
    result = runner.invoke(app, ["wikihow", "parse", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: ") and message in lines[0]
    assert "Traceback" not in result.output


def test_parse_of_a_pathological_page_stops_in_one_line(tmp_path: Path) -> None:
    # 10,000 formatting elements that each <b> re-creates (n² elements): minutes and tens of GB in-process.
    path = tmp_path / "page.html"
    path.write_text(
        "<html><body>" + "".join(f"<div><b c={i}></div>" for i in range(10_000)) + "x</body></html>"
    )
    result = runner.invoke(app, ["wikihow", "parse", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    # Which limit it meets first depends on the machine's speed (2.2 s, or 1 GiB of tree).
    assert len(lines) == 1, lines
    assert re.match(
        rf"error: {re.escape(str(path))}: parsing stopped at its (2\.2 s|1024 MiB memory) limit", lines[0]
    )


def test_parse_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["wikihow", "parse", str(tmp_path / "nope.html")])
    assert result.exit_code == 2 and result.stderr.strip() == f"error: {tmp_path / 'nope.html'}: no such file"


def test_import_howto100m_file(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["tasks", "import", str(FIXTURES / "task_ids_head.csv"), "--data-root", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rows"] == 164
    titles = read_dataset(DataRoot.from_any(str(tmp_path)), "tasks").to_table(columns=["title"]).column(0)
    assert 'Make "Plastic" out of Milk' in titles.to_pylist()


def test_import_bad_file_is_one_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("name,notes\nx,y\n", encoding="utf-8")
    result = runner.invoke(
        app, ["tasks", "import", str(path), "--format", "csv", "--data-root", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {path}: no 'title' column in header ['name', 'notes']"
    result = runner.invoke(app, ["tasks", "import", str(path), "--format", "howto100m"])
    assert result.exit_code == 2 and "line 1: expected 'id<TAB>title'" in result.stderr


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSite]:
    world = World(seed=0, generation=0, cache_dir=Path(tmp_path_factory.mktemp("world")), articles=ARTICLES,
                  videos=[])  # fmt: skip
    with DemoSite(world) as demo:
        yield demo


def test_mine_against_the_demo_site(site: DemoSite, tmp_path: Path) -> None:
    args = ["tasks", "mine", "--base-url", site.url, "--data-root", str(tmp_path), "--rps", "200",
            "--category", "Cars & Other Vehicles", "--category", "Relationships"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["articles"] == 3 and summary["drops"] == {"abstract_category": 1} and summary["kept"] == 2
    bad = runner.invoke(app, ["tasks", "mine", "--rps", "0", "--data-root", str(tmp_path)])
    assert bad.exit_code == 2 and bad.stderr.strip().startswith("error: bad option rps:")
