"""The wikiHow side: MediaWiki API continuation, page queries, and article HTML with wikiHow's markup."""

from __future__ import annotations

from pathlib import Path

import httpx
from selectolax.lexbor import LexborHTMLParser as HTMLParser

from tasks.demo.content import level1_categories, url_title
from tasks.demo.site import DemoSite

FIXTURES = Path(__file__).parents[2] / "fixtures" / "wikihow"


def _members(site: DemoSite, category: str, limit: int) -> tuple[list[dict], int]:
    """Walk list=categorymembers with cmcontinue as a MediaWiki client does; return members and batches."""
    params = {"action": "query", "list": "categorymembers", "cmtitle": f"Category:{category}",
              "cmlimit": str(limit), "format": "json"}  # fmt: skip
    members, batches = [], 0
    with httpx.Client(base_url=site.url, timeout=10) as client:
        while True:
            data = client.get("/api.php", params=params).raise_for_status().json()
            batches += 1
            members += data["query"]["categorymembers"]
            if "continue" not in data:
                return members, batches
            assert data["continue"]["continue"] == "-||"
            params = {**params, **data["continue"]}


def test_categorymembers_paginates_with_continue(site: DemoSite) -> None:
    world = site.world
    food = [a for a in world.articles if a.category_path[0] == "Food and Entertaining"]
    top, batches = _members(site, "Food and Entertaining", limit=2)
    assert batches == 2  # 3 subcategories, 2 per batch
    assert all(m["ns"] == 14 and m["title"].startswith("Category:") for m in top)
    # Walk the tree down to the articles, one member per batch so continuation is exercised hard.
    found: list[str] = []
    todo = [m["title"].split(":", 1)[1] for m in top]
    while todo:
        members, _ = _members(site, todo.pop(), limit=1)
        todo += [m["title"].split(":", 1)[1] for m in members if m["ns"] == 14]
        found += [m["title"] for m in members if m["ns"] == 0]
    assert sorted(found) == sorted(a.title for a in food)
    assert len({m["pageid"] for m in top}) == len(top)


def test_categorymembers_errors_like_mediawiki(site: DemoSite) -> None:
    bad = httpx.get(f"{site.url}/api.php", params={"action": "query", "list": "categorymembers",
                    "cmtitle": "Category:Food and Entertaining", "cmcontinue": "page|00|1"}).json()  # fmt: skip
    assert bad["error"]["code"] == "badcontinue"
    assert httpx.get(f"{site.url}/api.php", params={"action": "nope"}).json()["error"]["code"] == "badvalue"
    limit = {"action": "query", "list": "categorymembers", "cmtitle": "Category:Recipes", "cmlimit": "ten"}
    assert httpx.get(f"{site.url}/api.php", params=limit).json()["error"]["code"] == "badinteger"


def test_page_query_gives_categories_wikitext_and_info(site: DemoSite) -> None:
    params = {"action": "query", "titles": "Grill_Zucchini|No Such Task", "prop": "categories|revisions|info",
              "rvprop": "content", "format": "json"}  # fmt: skip
    data = httpx.get(f"{site.url}/api.php", params=params).json()["query"]
    assert data["normalized"] == [{"from": "Grill_Zucchini", "to": "Grill Zucchini"}]
    pages = data["pages"]
    missing = pages.pop("-2")
    assert missing["missing"] == "" and missing["title"] == "No Such Task"
    (page,) = pages.values()
    assert page["categories"] == [{"ns": 14, "title": "Category:Vegetable Recipes"}]
    text = page["revisions"][0]["*"]
    assert "=== Grilling Zucchini Slices ===" in text and "\n# Wash and dry the zucchini." in text
    assert page["length"] == len(text.encode()) and page["contentmodel"] == "wikitext"
    v2 = httpx.get(f"{site.url}/api.php", params={**params, "formatversion": "2"}).json()["query"]["pages"]
    assert v2[0]["revisions"][0]["content"] == text and v2[1]["missing"] is True


def parse_article(html: str) -> dict:
    """Read a wikiHow article with the selectors that work on real wikiHow pages."""
    tree = HTMLParser(html)
    methods = []
    for section in tree.css("div.section.steps"):
        head = section.css_first("h3 span.mw-headline")
        summaries = [b.text(strip=True) for b in section.css("ol.steps_list_2 > li div.step > b.whb")]
        methods.append((head.text(strip=True) if head else None, summaries))
    crumbs = [a.text(strip=True) for a in tree.css("ul#breadcrumb li a")][1:]  # drop "Categories"
    return {"title": tree.css_first("h1#section_0 a").text(strip=True), "methods": methods, "crumbs": crumbs,
            "page_title": tree.css_first("title").text()}  # fmt: skip


def test_real_wikihow_fixture_reads_with_the_same_selectors() -> None:
    real = parse_article((FIXTURES / "grill-fish.html").read_text())
    assert real["title"] == "How to Grill Fish" and real["page_title"] == "3 Ways to Grill Fish - wikiHow"
    assert real["crumbs"][0] == "Food and Entertaining" and len(real["methods"]) == 3
    assert real["methods"][0][0] == "Cleaning the Grill to Prevent Sticking" and all(
        m[1] for m in real["methods"]
    )


def test_article_html_parses_like_a_real_wikihow_page(site: DemoSite) -> None:
    for article in site.world.articles:
        r = httpx.get(f"{site.url}/{url_title(article.title)}")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        page = parse_article(r.text)
        assert page["title"] == f"How to {article.title}"
        assert page["page_title"] == f"{article.display_title} - wikiHow"
        assert page["crumbs"] == list(article.category_path)
        expected = [
            (m.name if len(article.methods) > 1 else None, [s.summary for s in m.steps])
            for m in article.methods
        ]
        assert page["methods"] == expected
        assert f'"wgCategories":["{article.leaf_category}"]' in r.text
    assert site.world.article("Grill Zucchini").display_title == "2 Ways to Grill Zucchini"  # type: ignore[union-attr]
    assert httpx.get(f"{site.url}/No-Such-Article").status_code == 404


def test_world_has_the_task_mix_the_miner_must_handle(site: DemoSite) -> None:
    articles = site.world.articles
    assert 8 <= len(articles) <= 12
    assert {"Food and Entertaining", "Home and Garden", "Cars & Other Vehicles", "Relationships"} <= set(
        level1_categories()
    )
    assert sum(a.category_path[0] == "Food and Entertaining" for a in articles) >= 3
    titles = [a.title for a in articles]
    assert len({t.lower() for t in titles}) == len(titles) - 1  # exactly one case-only duplicate
    kept = site.world.visual_tasks()
    assert all(a.category_path[0] != "Relationships" for a in kept) and len(kept) == len(articles) - 2


def test_robots_and_category_pages(site: DemoSite) -> None:
    robots = httpx.get(f"{site.url}/robots.txt").text
    assert "User-agent: *" in robots and "Allow: /api.php" in robots
    cat = HTMLParser(httpx.get(f"{site.url}/Category:Vegetable-Recipes").text)
    assert [a.text() for a in cat.css("#cat_all a")] == ["How to Grill Zucchini"]


def test_breadcrumb_links_resolve_including_ampersand_categories(site: DemoSite) -> None:
    page = HTMLParser(httpx.get(f"{site.url}/Change-a-Tire").text)
    hrefs = [a.attributes["href"] for a in page.css("ul#breadcrumb li a")][1:]
    assert hrefs[0] == "/Category:Cars-&-Other-Vehicles"
    for href in hrefs:
        assert httpx.get(f"{site.url}{href}").status_code == 200, href


def test_sub_bullets_and_tips_sit_where_wikihow_puts_them(site: DemoSite) -> None:
    page = HTMLParser(httpx.get(f"{site.url}/Grill-Zucchini").text)
    first = page.css_first("ol.steps_list_2 > li div.step")
    assert first.css_first("b.whb").text() == "Wash and dry the zucchini."
    assert [li.text() for li in first.css("ul > li")] == [
        "Pick firm zucchini with glossy skin.",
        "Trim off both ends.",
    ]
    assert [li.text() for li in page.css("div.section.tips #tips li")][0].startswith("Serve the zucchini")
    members = httpx.get(f"{site.url}/api.php", params={"action": "query", "list": "categorymembers",
                        "cmtitle": "Category:Recipes", "cmnamespace": "14", "cmlimit": "max"}).json()  # fmt: skip
    assert {m["ns"] for m in members["query"]["categorymembers"]} == {14}
