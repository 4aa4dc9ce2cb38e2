"""A wikiHow page cut short in transfer is retried next run, never stored as a shorter article."""

from __future__ import annotations

from pathlib import Path

from tasks.tasks.rows import mined_row
from tasks.wikihow.crawl import PlannedArticle
from tasks.wikihow.filters import VisualFilter
from tasks.wikihow.parser import parse_article

PAGE = Path(__file__).parents[2] / "fixtures" / "wikihow" / "grill-fish.html"


class OnePage:
    """Serves one page's bytes for any title: the fetch half of WikiHowClient."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def article_url(self, title: str) -> str:
        return f"https://www.wikihow.com/{title.replace(' ', '-')}"

    def fetch_article(self, title: str) -> bytes:
        return self.body


def test_truncated_page_is_an_error_row_to_retry() -> None:
    item = PlannedArticle("Grill Fish", 1, ("Food and Entertaining",))
    whole = PAGE.read_bytes()
    ok = mined_row(item, OnePage(whole), parse_article, VisualFilter(), "crawl-0000")  # type: ignore[arg-type]
    assert ok["status"] == "ok" and ok["n_methods"] >= 1
    cut = mined_row(item, OnePage(whole[: len(whole) * 2 // 3]), parse_article, VisualFilter(), "crawl-0000")  # type: ignore[arg-type]
    assert cut["status"] == "error" and "truncated" in cut["error"] and not cut["keep"]
