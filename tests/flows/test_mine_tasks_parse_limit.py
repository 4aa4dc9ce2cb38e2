"""A page whose parse is aborted at its limits on three runs is given up ("failed", parse_limit) and never
fetched again; a page cut short in transfer is retried on every run, uncounted; a normal page is mined once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.mine_tasks import mine_tasks
from storage.layout import DataRoot
from storage.shards import read_dataset
from tasks.tasks.config import MineTasksConfig
from tests.flows.one_category_wiki import OneCategoryWiki
from tests.loopback import serving

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "wikihow"
WHOLE = (FIXTURES / "grill-fish.html").read_bytes()
# 1,000 formatting elements each closed by a </div> and re-created by every later <b>: ~500k elements, which
# parse under the default 1 GiB in ~0.5 s but stop at a 128 MiB cap in ~0.3 s.
TANGLED = (
    "<html><body><h1 id=section_0>How to Tangle</h1>"
    + "".join(f"<div><b c={i}></div>" for i in range(1_000))
    + "x</body></html>"
).encode()


class _Wiki(OneCategoryWiki):
    """One category of three articles: a real page, a pathological one, and one always cut short in transfer
    (its Content-Length honest: the server's page itself ends early). `hits` lists every path asked for."""

    titles = ["Cut Short", "Grill Fish", "Tangled Page"]
    pages = {"Grill-Fish": WHOLE, "Tangled-Page": TANGLED, "Cut-Short": WHOLE[: len(WHOLE) * 2 // 3]}
    hits: list[str] = []


@pytest.fixture()
def wiki() -> Iterator[str]:
    _Wiki.hits = []
    with serving(_Wiki) as url:
        yield url


def _rows(root: Path) -> dict[str, dict]:
    return {r["title"]: r for r in read_dataset(DataRoot.from_any(str(root)), "tasks").to_table().to_pylist()}


def _counts(root: Path) -> dict[str, int]:
    files = list((root / "_work" / "tasks").glob("part-00000-*/parse_attempts.json"))
    assert len(files) <= 1, files
    return json.loads(files[0].read_text()) if files else {}


def _pages_asked() -> list[str]:
    asked, _Wiki.hits = [p for p in _Wiki.hits if p not in ("/api.php", "/robots.txt")], []
    return sorted(asked)


def test_a_page_aborted_on_three_runs_is_given_up_and_not_fetched_again(wiki: str, tmp_path: Path) -> None:
    cfg = MineTasksConfig(base_url=wiki, rps=200.0, root_categories=("Food and Entertaining",), max_retries=0,
                          shard_size=3, parse_memory_mb=128)  # fmt: skip
    url = f"{wiki}/Tangled-Page"
    # Counts left under another hash of the shard (other members, another config) never carry over, and go
    # once the shard is written; another shard's folder is left alone.
    stale = tmp_path / "_work" / "tasks" / "part-00000-0ldhash"
    other_shard = tmp_path / "_work" / "tasks" / "part-00001-0ldhash"
    for folder in (stale, other_shard):
        folder.mkdir(parents=True)
        (folder / "parse_attempts.json").write_text(json.dumps({"Tangled Page": 2}))
    for run in (1, 2):
        summary = mine_tasks(cfg, data_root=str(tmp_path))
        assert summary["errors"] == 2 and summary["kept"] == 1 and summary["drops"] == {}
        rows = _rows(tmp_path)
        tangled = rows["Tangled Page"]
        assert (tangled["status"], tangled["drop_reason"], tangled["keep"]) == ("error", None, False)
        assert tangled["error"].startswith(f"{url}: parsing stopped at its 128 MiB memory limit")
        assert "tasks.parse_memory_mb" in tangled["error"]
        assert tangled["error"].endswith(f"(parse {run} of 3, retried next run)"), tangled["error"]
        assert rows["Grill Fish"]["status"] == "ok" and rows["Grill Fish"]["n_steps"] == 19
        # A page cut short in transfer is retried as ever, and not counted as an aborted parse.
        cut = rows["Cut Short"]
        assert cut["status"] == "error" and "truncated page" in cut["error"] and "parse" not in cut["error"]
        assert _counts(tmp_path) == {"Tangled Page": run}
        assert not stale.exists() and other_shard.exists()
        # The normal page is fetched on the first run only; the other two on each run.
        expected = (
            ["/Cut-Short", "/Grill-Fish", "/Tangled-Page"] if run == 1 else ["/Cut-Short", "/Tangled-Page"]
        )
        assert _pages_asked() == expected

    third = mine_tasks(cfg, data_root=str(tmp_path))
    assert third["errors"] == 1 and third["kept"] == 1 and third["drops"] == {"parse_limit": 1}
    tangled = _rows(tmp_path)["Tangled Page"]
    assert (tangled["status"], tangled["drop_reason"], tangled["keep"]) == ("failed", "parse_limit", False)
    assert tangled["error"].startswith(f"{url}: parsing stopped at its 128 MiB memory limit")
    assert tangled["error"].endswith("(given up after 3 aborted parses)"), tangled["error"]
    assert _pages_asked() == ["/Cut-Short", "/Tangled-Page"]

    # The shard still has an error row (the cut page), so it runs again: the given-up page is not asked for.
    fourth = mine_tasks(cfg, data_root=str(tmp_path))
    assert fourth["shards_cached"] == 0 and fourth["drops"] == {"parse_limit": 1} and fourth["errors"] == 1
    assert _pages_asked() == ["/Cut-Short"]
    rows = _rows(tmp_path)
    assert rows["Tangled Page"] == tangled and rows["Grill Fish"]["status"] == "ok"
    assert rows["Cut Short"]["status"] == "error"
    assert _counts(tmp_path) == {"Tangled Page": 3}
