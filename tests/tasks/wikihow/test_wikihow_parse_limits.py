"""A hostile or broken page cannot stall the mining stage: the parse runs in a child process under a time and
a memory limit, and a page past them is an error row naming the problem; real pages parse as in-process."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.tasks.config import POLITENESS_FIELDS, MineTasksConfig
from tasks.tasks.rows import mined_row
from tasks.wikihow.bounded_parse import BoundedParser, ParseAborted, ParserUnavailable
from tasks.wikihow.crawl import PlannedArticle
from tasks.wikihow.filters import VisualFilter
from tasks.wikihow.parser import ParseError, TruncatedPageError, parse_article

FIXTURES = Path(__file__).parents[2] / "fixtures" / "wikihow"
PAGES = sorted(FIXTURES.glob("*.html"))
HEAD = "<html><body><h1 id=section_0>How to Grill Fish</h1>"
# 200,000 nested <div>s (2.2 MB): lexbor checks the whole open-element stack at each one, ~124 s in-process.
DEEP = HEAD + "<div>" * 200_000 + "x" + "</div>" * 200_000 + "</body></html>"
# 20,000 formatting elements, each closed by a </div> but kept on the active formatting list, at a source
# depth of 2 (no scan of tag nesting sees it): each <b> re-creates all the earlier ones, n²/2 elements.
# In-process, 4,000 of them took ~10 s and 6 GB; these 20,000 (0.4 MB) would take minutes and ~150 GB.
AMPLIFIED = HEAD + "".join(f"<div><b c={i}></div>" for i in range(20_000)) + "x</body></html>"


class OnePage:
    """Serves one page for any title: the fetch half of WikiHowClient."""

    def __init__(self, body: str) -> None:
        self.body = body

    def article_url(self, title: str) -> str:
        return f"https://www.wikihow.com/{title.replace(' ', '-')}"

    def fetch_article(self, title: str) -> str:
        return self.body


@pytest.fixture(scope="module")
def parser() -> Iterator[BoundedParser]:
    with BoundedParser(base_s=1.0, s_per_mb=0.5) as bounded:
        yield bounded


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_real_pages_parse_as_in_process(parser: BoundedParser, page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    url = f"https://www.wikihow.com/{page.stem}"
    assert parser.parse(html, url) == parse_article(html, url=url)
    assert parser.parse(page.read_bytes()) == parse_article(page.read_bytes())


def test_parse_errors_come_back_as_they_are(parser: BoundedParser) -> None:
    with pytest.raises(ParseError, match="not a wikiHow article") as caught:
        parser.parse("<html><head><title>Cats</title></head><body><p>meow</p></body></html>")
    assert type(caught.value) is ParseError
    whole = (FIXTURES / "grill-fish.html").read_text(encoding="utf-8")
    with pytest.raises(TruncatedPageError, match="truncated page"):
        parser.parse(whole[: len(whole) * 2 // 3])


@pytest.mark.parametrize("html", [DEEP, AMPLIFIED], ids=["nested-divs", "formatting-amplified"])
def test_a_pathological_page_stops_at_its_time_limit(parser: BoundedParser, html: str) -> None:
    limit_s = parser.limit_s(html)
    started = time.monotonic()
    with pytest.raises(
        ParseAborted, match=r"stopped at its \d+\.\d s limit .*tasks\.parse_timeout_s.*pathological"
    ):
        parser.parse(html)
    assert time.monotonic() - started < limit_s + 2.0
    assert parser.pid is None  # killed, not left running
    # The next page gets a new child and parses as ever.
    page = FIXTURES / "grill-fish.html"
    assert parser.parse(page.read_bytes()).title == "Grill Fish"


def test_a_pathological_page_stops_at_its_memory_limit() -> None:
    html = HEAD + "".join(f"<div><b c={i}></div>" for i in range(4_000)) + "x</body></html>"
    with BoundedParser(base_s=60.0, memory_bytes=256 << 20) as bounded:
        started = time.monotonic()
        with pytest.raises(ParseAborted, match="parsing stopped at its 256 MiB memory limit"):
            bounded.parse(html)
        assert time.monotonic() - started < 30.0
        assert bounded.parse((FIXTURES / "marinate-pork.html").read_bytes()).n_steps > 0


def test_a_child_that_dies_mid_page_is_the_page_error(parser: BoundedParser) -> None:
    parser.parse((FIXTURES / "grill-fish.html").read_bytes())  # started
    pid = parser.pid
    assert pid is not None
    threading.Timer(0.5, os.kill, (pid, signal.SIGKILL)).start()
    with pytest.raises(ParseAborted, match="the parsing process died on this page .killed by SIGKILL."):
        parser.parse(DEEP)  # a page that is still parsing when the kill comes


def test_a_child_that_died_idle_is_replaced(parser: BoundedParser) -> None:
    parser.parse((FIXTURES / "grill-fish.html").read_bytes())
    pid = parser.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    assert parser.parse((FIXTURES / "grill-fish.html").read_bytes()).title == "Grill Fish"
    assert parser.pid not in (None, pid)


def test_a_child_that_cannot_start_fails_the_shard_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", "/bin/false")  # an interpreter that cannot run: no page's fault
    with (
        BoundedParser() as bounded,
        pytest.raises(ParserUnavailable, match=r"the wikiHow parsing process did not start \(exit code 1\)"),
    ):
        bounded.parse("<html></html>")


def test_a_child_that_closes_its_output_before_it_exits_is_named_by_its_exit_code(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The end of the child's output comes before its exit status: the parser waits for the status (it used
    to poll once and, finding the child not yet exited, call it "not ready after 60 s")."""
    slow_exit = tmp_path / "slow-exit"
    slow_exit.write_text("#!/bin/sh\nexec 1>&-\nsleep 0.5\nexit 3\n")
    slow_exit.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(slow_exit))
    with (
        BoundedParser() as bounded,
        pytest.raises(ParserUnavailable, match=r"the wikiHow parsing process did not start \(exit code 3\)"),
    ):
        bounded.parse("<html></html>")


def test_the_stalled_page_is_an_error_row_and_the_shard_goes_on(parser: BoundedParser) -> None:
    item = PlannedArticle("Grill Fish", 1, ("Food and Entertaining",))
    started = time.monotonic()
    row = mined_row(item, OnePage(DEEP), parser.parse, VisualFilter(), "crawl-0000")  # type: ignore[arg-type]
    assert time.monotonic() - started < parser.limit_s(DEEP) + 2.0
    assert row["status"] == "error" and not row["keep"] and row["steps"] is None
    assert row["error"].startswith("https://www.wikihow.com/Grill-Fish: parsing stopped at its")
    page = (FIXTURES / "grill-fish.html").read_text(encoding="utf-8")
    ok = mined_row(item, OnePage(page), parser.parse, VisualFilter(), "crawl-0000")  # type: ignore[arg-type]
    assert ok["status"] == "ok" and ok["n_steps"] == 19


def test_the_stage_parses_under_its_configured_limit() -> None:
    cfg = MineTasksConfig(parse_timeout_s=7.5)
    with cfg.parser() as bounded:
        assert bounded.limit_s("x" * 2_000_000) == pytest.approx(9.5)
    # A time limit changes no finished row (a page past it is an error row, retried): no rerun of shards.
    assert "parse_timeout_s" in POLITENESS_FIELDS
    assert cfg.row_hash() == MineTasksConfig().row_hash()
