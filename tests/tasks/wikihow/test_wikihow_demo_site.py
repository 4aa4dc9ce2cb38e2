"""The real client and parser against the local demo site (HTTP on 127.0.0.1, no videos rendered)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.demo.content import ARTICLES, level1_categories
from tasks.demo.site import DemoSite
from tasks.demo.troubles import Troubles
from tasks.demo.world import World
from tasks.wikihow.client import WikiHowClient, WikiHowError
from tasks.wikihow.crawl import walk_categories
from tasks.wikihow.parser import parse_article
from tasks.wikihow.politeness import RateLimiter


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSite]:
    # Articles only: the wikiHow side of the demo world needs no rendered videos.
    world = World(seed=0, generation=0, cache_dir=Path(tmp_path_factory.mktemp("world")), articles=ARTICLES,
                  videos=[])  # fmt: skip
    with DemoSite(world) as demo:
        yield demo


def client_for(site: DemoSite, sleeps: list[float] | None = None) -> WikiHowClient:
    sink = sleeps if sleeps is not None else []
    return WikiHowClient(site.url, limiter=RateLimiter(500.0), sleep=sink.append, timeout_s=5.0)


def test_walk_finds_every_demo_article_with_its_path(site: DemoSite) -> None:
    with client_for(site) as client:
        found = walk_categories(level1_categories(), lambda c: client.category_members(c, page_size=2), 4)
    assert sorted(a.title for a in found) == sorted(a.title for a in ARTICLES)
    paths = {a.title: a.category_path for a in found}
    for article in ARTICLES:
        assert paths[article.title] == tuple(reversed(article.category_path))


def test_every_demo_page_parses_to_its_content(site: DemoSite) -> None:
    with client_for(site) as client:
        for article in ARTICLES:
            parsed = parse_article(client.fetch_article(article.title))
            assert parsed.title == article.title
            assert parsed.categories == tuple(reversed(article.category_path))
            assert [m.name for m in parsed.methods if len(article.methods) > 1] == [
                m.name for m in article.methods if len(article.methods) > 1
            ]
            assert parsed.step_summaries == [s.summary for m in article.methods for s in m.steps]


def test_client_honours_the_demo_sites_429_retry_after(site: DemoSite) -> None:
    sleeps: list[float] = []
    site.set_troubles(Troubles(too_many_requests=3, retry_after_s=2))
    try:
        with client_for(site, sleeps) as client:
            html = client.fetch_article(ARTICLES[0].title)
    finally:
        site.set_troubles()
    assert parse_article(html).title == ARTICLES[0].title
    assert sleeps == [2.0, 2.0, 2.0]


def test_unknown_article_is_a_permanent_error(site: DemoSite) -> None:
    with client_for(site) as client:
        with pytest.raises(WikiHowError) as info:
            client.fetch_article("No Such Task Anywhere")
    assert info.value.status == 404 and info.value.permanent
