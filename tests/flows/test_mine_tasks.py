"""The mine_tasks flow against the demo site, and a crawl that meets broken and failing pages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.mine_tasks import mine_tasks
from storage.layout import DataRoot
from storage.shards import list_markers, read_dataset
from tasks.demo.content import ARTICLES
from tasks.demo.site import DemoSite
from tasks.demo.world import World
from tasks.tasks.config import MineTasksConfig
from tasks.wikihow.titles import task_id
from tests.flows.cli_checks import invoke, one_error_line
from tests.flows.one_category_wiki import OneCategoryWiki
from tests.loopback import serving

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "wikihow"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSite]:
    world = World(seed=0, generation=0, cache_dir=Path(tmp_path_factory.mktemp("world")), articles=ARTICLES,
                  videos=[])  # fmt: skip
    with DemoSite(world) as demo:
        yield demo


def rows_by_title(root: str) -> dict[str, dict]:
    table = read_dataset(DataRoot.from_any(root), "tasks").to_table()
    return {r["title"]: r for r in table.to_pylist()}


def test_demo_crawl_mines_filters_dedups_and_second_run_does_no_work(site: DemoSite, tmp_path: Path) -> None:
    cfg = MineTasksConfig(base_url=site.url, rps=200.0, shard_size=4, crawl_id="crawl-demo")
    n_shards = -(-len(ARTICLES) // 4)
    first = mine_tasks(cfg, data_root=str(tmp_path))
    assert first["articles"] == len(ARTICLES)
    assert first["shards"] == n_shards and first["shards_cached"] == 0
    assert first["drops"] == {"abstract_category": 1, "duplicate": 1}
    assert first["errors"] == 0 and first["kept"] == len(ARTICLES) - 2

    rows = rows_by_title(str(tmp_path))
    assert set(rows) == {a.title for a in ARTICLES}
    apologize = rows["Apologize to a Friend"]
    assert apologize["keep"] is False and apologize["drop_reason"] == "abstract_category"
    assert apologize["category_path"] == ["Maintaining Friendships", "Friends", "Relationships"]
    # "Make Pancakes" sorts before "Make pancakes": the earlier title keeps the task
    assert rows["Make Pancakes"]["keep"] is True
    assert rows["Make pancakes"]["keep"] is False and rows["Make pancakes"]["drop_reason"] == "duplicate"
    assert rows["Make pancakes"]["task_id"] == rows["Make Pancakes"]["task_id"]
    for article in ARTICLES:
        row = rows[article.title]
        assert row["status"] == "ok" and row["crawl_id"] == "crawl-demo" and row["source"] == "wikihow"
        assert row["task_id"] == task_id(article.title)
        assert row["category_path"] == list(reversed(article.category_path))
        if row["drop_reason"] != "duplicate":  # duplicates are recorded without being fetched
            assert row["n_methods"] == len(article.methods)
            assert row["steps"] == [s.summary for m in article.methods for s in m.steps]
            assert row["n_steps"] == len(row["steps"])

    requests_before = len(site.requests)
    second = mine_tasks(cfg, data_root=str(tmp_path))
    assert second["shards_cached"] == second["shards"] == n_shards
    assert len(site.requests) == requests_before  # not even the category walk asks again
    assert rows_by_title(str(tmp_path)) == rows

    # Politeness settings are not part of the hash: a slower crawl reuses everything too.
    third = mine_tasks(cfg.model_copy(update={"rps": 50.0}), data_root=str(tmp_path))
    assert third["shards_cached"] == n_shards and len(site.requests) == requests_before

    # The walk checkpoints each root category: losing one re-walks that root only.
    checkpoints = sorted((tmp_path / "tasks" / "v1" / "_crawl" / "crawl-demo").glob("*.json"))
    assert len(checkpoints) == len(cfg.root_categories)
    relationships = next(p for p in checkpoints if "Apologize to a Friend" in p.read_text())
    relationships.unlink()
    fourth = mine_tasks(cfg, data_root=str(tmp_path))
    assert fourth["shards_cached"] == n_shards
    asked = [line.split()[1] for line in list(site.requests)[requests_before:]]
    assert len(asked) == 3, asked  # Relationships > Friends > Maintaining Friendships (robots.txt is cached)
    assert all("Relationships" in a or "Friends" in a for a in asked), asked


def test_max_articles_and_roots_limit_the_crawl_and_growing_it_reruns_new_shards_only(
    site: DemoSite, tmp_path: Path
) -> None:
    cfg = MineTasksConfig(base_url=site.url, rps=200.0, root_categories=("Home and Garden",), max_articles=2,
                          shard_size=1)  # fmt: skip
    summary = mine_tasks(cfg, data_root=str(tmp_path))
    assert summary["articles"] == 2 and summary["shards"] == 2
    assert set(rows_by_title(str(tmp_path))) == {"Clean a Window", "Paint a Wall"}
    grown = mine_tasks(cfg.model_copy(update={"max_articles": 3}), data_root=str(tmp_path))
    assert grown["shards"] == 3 and grown["shards_cached"] == 2
    assert set(rows_by_title(str(tmp_path))) == {"Clean a Window", "Paint a Wall", "Plant Tomatoes"}
    # Parse counts a shard kept (a page aborted on an earlier run) go with the shard when the crawl shrinks.
    counts = tmp_path / "_work" / "tasks" / "part-00002-anyhash"
    counts.mkdir(parents=True)
    (counts / "parse_attempts.json").write_text('{"Plant Tomatoes": 1}')
    shrunk = mine_tasks(cfg.model_copy(update={"max_articles": 1}), data_root=str(tmp_path))
    assert shrunk["shards_cached"] == 1 and shrunk["stale_shards_removed"] == 2
    assert not counts.exists()
    assert set(rows_by_title(str(tmp_path))) == {"Clean a Window"}


def test_a_walk_that_finds_no_article_is_refused_and_keeps_the_mined_tasks(
    site: DemoSite, tmp_path: Path
) -> None:
    """A mistyped --category lists nothing: it used to finish with exit 0 after deleting every mined shard
    as stale (a crawl that shrank to zero articles)."""
    root = str(tmp_path)
    mine = ["tasks", "mine", "--base-url", site.url, "--rps", "200", "--data-root", root]
    assert invoke(*mine, "--category", "Home and Garden").exit_code == 0
    before = rows_by_title(root)
    assert before
    one_error_line(invoke(*mine, "--category", "Home and Gardn"), "no wikiHow articles", "'Home and Gardn'")
    assert rows_by_title(root) == before


def test_an_api_path_that_is_not_there_is_not_asked_again(site: DemoSite, tmp_path: Path) -> None:
    """A --base-url with a wrong path: the site answers 404 for its API, and the same request 30 s and 60 s
    later (Prefect's retries of the walk) would get the same answer: one request, then one line."""
    before = len(site.requests)
    base = f"{site.url}/wrong-path"
    result = invoke("tasks", "mine", "--base-url", base, "--rps", "200", "--data-root", str(tmp_path))
    one_error_line(result, "HTTP 404", "/wrong-path/api.php")
    asked = [line for line in list(site.requests)[before:] if "/wrong-path/api.php" in line]
    assert len(asked) == 1, asked


class _Handler(OneCategoryWiki):
    """A wiki with three articles: a real wikiHow page, a page that is not an article, a failing one."""

    titles = ["Grill Fish", "Not An Article", "Flaky Task"]
    pages = {
        "Grill-Fish": (FIXTURES / "grill-fish.html").read_bytes(),
        "Not-An-Article": b"<html><head><title>Oops</title></head><body>Server says hi</body></html>",
    }
    failing = frozenset({"/Flaky-Task"})
    hits: list[str] = []


@pytest.fixture()
def broken_wiki() -> Iterator[str]:
    _Handler.hits = []
    with serving(_Handler) as url:
        yield url


def test_bad_pages_become_rows_and_only_transient_ones_are_retried(broken_wiki: str, tmp_path: Path) -> None:
    cfg = MineTasksConfig(base_url=broken_wiki, rps=200.0, root_categories=("Food and Entertaining",),
                          max_retries=1, backoff_base_s=0.0, shard_size=2)  # fmt: skip
    summary = mine_tasks(cfg, data_root=str(tmp_path))
    assert summary["articles"] == 3 and summary["errors"] == 1 and summary["kept"] == 1
    rows = rows_by_title(str(tmp_path))
    fish = rows["Grill Fish"]
    assert fish["keep"] is True and fish["n_steps"] == 19 and fish["source_id"] == "1"
    assert fish["category_path"] == ["Barbecue Fish", "Barbecue", "Food and Entertaining"]
    broken = rows["Not An Article"]
    assert broken["status"] == "failed" and broken["drop_reason"] == "not_an_article"
    assert "not a wikiHow article" in broken["error"] and broken["keep"] is False
    flaky = rows["Flaky Task"]
    assert flaky["status"] == "error" and "HTTP 500" in flaky["error"] and flaky["keep"] is False

    assert _Handler.hits.count("/robots.txt") == 1  # one fetch for the walk and both shards

    # Shard 0 ("Flaky Task", "Grill Fish") had an error: the rerun asks for the flaky page only.
    _Handler.hits = []
    again = mine_tasks(cfg, data_root=str(tmp_path))
    assert again["shards_cached"] == 1 and again["errors"] == 1
    assert _Handler.hits == ["/Flaky-Task", "/Flaky-Task"]
    markers = list_markers(DataRoot.from_any(str(tmp_path)), "tasks")
    assert [(m.shard, m.errors) for m in markers] == [(0, 1), (1, 0)]


def test_acceptance_on_the_shared_demo_site(demo_site: DemoSite, tmp_path: Path) -> None:
    """The full demo world (the one every stage uses): every task mined, abstract and duplicate dropped."""
    cfg = MineTasksConfig(base_url=demo_site.url, rps=200.0)
    summary = mine_tasks(cfg, data_root=str(tmp_path))
    articles = demo_site.world.articles
    assert summary["articles"] == len(articles) and summary["errors"] == 0
    assert summary["drops"] == {"abstract_category": 1, "duplicate": 1}
    rows = rows_by_title(str(tmp_path))
    assert set(rows) == {a.title for a in articles}
    assert rows["Apologize to a Friend"]["drop_reason"] == "abstract_category"
    assert rows["Make pancakes"]["drop_reason"] == "duplicate"

    def last_request() -> tuple[int, str | None]:
        # the log is a bounded deque: its length alone may stop growing, the newest entry does not
        return len(demo_site.requests), demo_site.requests[-1] if demo_site.requests else None

    before = last_request()
    assert mine_tasks(cfg, data_root=str(tmp_path))["shards_cached"] == summary["shards"]
    after = last_request()
    assert after[0] == before[0] and after[1] is before[1]
