"""Article pages and API answers are read up to a byte cap: a loopback server that sends a body far past it
(announced by Content-Length or not, or gzip that inflates past it) costs one error, not the memory."""

from __future__ import annotations

import time
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.tasks.config import MineTasksConfig
from tasks.tasks.rows import mined_row
from tasks.wikihow.client import WikiHowClient, WikiHowError
from tasks.wikihow.crawl import PlannedArticle
from tasks.wikihow.filters import VisualFilter
from tasks.wikihow.parser import parse_article
from tests.loopback import CountingHandler, counting

CAP = 1_000_000
HUGE = 100 * CAP  # what the server would send if let: 100 times the cap
CHUNK = b"<p>" + b"x" * (64 * 1024 - 7) + b"</p>"


def _gzip_bomb(size: int) -> bytes:
    """`size` zero bytes gzip-compressed (~1/1000 of it)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    return b"".join([*(packer.compress(zeros) for _ in range(size >> 20)), packer.flush()])


BOMB = _gzip_bomb(HUGE)
# A real wikiHow page, with a comment that makes it ~0.3 MB as the live pages are: gzip inflates to 5 pieces.
PAGE = (
    (Path(__file__).parents[2] / "fixtures" / "wikihow" / "grill-fish.html")
    .read_bytes()
    .replace(b"</body>", b"<!-- " + b"padding " * 35_000 + b"-->\n</body>")
)


class _Huge(CountingHandler):
    """`/Drip-Page` sends a few bytes every 50 ms forever, `/Declared-Page` announces its size, `/Endless-Page` (and the API) send one until closed, `/Bomb-Page`
    is a small gzip body that inflates to HUGE, `/Grill-Fish` a real page gzipped; `sent` counts the bytes
    the client took."""

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/robots.txt":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        if self.path == "/Grill-Fish":
            packed = zlib.compress(PAGE, wbits=31)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(packed)))
            self.end_headers()
            self.wfile.write(packed)
            return
        if self.path.startswith("/Drip-Page"):  # a page's bytes, a few at a time, never ending
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b"<p>drip</p>")
                    self.wfile.flush()
                    type(self).sent += 11
                    time.sleep(0.05)
            except OSError:
                return
        if self.path.startswith("/Declared-Page"):
            self.send_header("Content-Length", str(HUGE))
        if self.path.startswith("/Bomb-Page"):
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(BOMB)))
        self.end_headers()
        self.stream(
            [BOMB] if self.path.startswith("/Bomb-Page") else (CHUNK for _ in range(HUGE // len(CHUNK)))
        )


@pytest.fixture()
def huge_site() -> Iterator[str]:
    with counting(_Huge) as url:
        yield url


def _client(base: str) -> WikiHowClient:
    return WikiHowClient(base, rps=1000.0, max_retries=0, robots_cache_s=0.0, max_response_bytes=CAP)


@pytest.mark.parametrize(
    ("title", "says"),
    [
        ("Declared Page", f"Content-Length {HUGE} bytes, past the 1 MB cap"),
        ("Endless Page", "body past the 1 MB cap"),
        ("Bomb Page", "body past the 1 MB cap"),
    ],
)
def test_an_article_past_the_cap_is_an_error_row_and_is_not_read_whole(
    huge_site: str, title: str, says: str
) -> None:
    item = PlannedArticle(title, 1, ("Food and Entertaining",))
    tracemalloc.start()
    try:
        with _client(huge_site) as client:
            row = mined_row(item, client, parse_article, VisualFilter(), "crawl-0000")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    url = f"{huge_site}/{title.replace(' ', '-')}"
    assert (row["status"], row["keep"], row["url"]) == ("error", False, url)
    assert row["error"].startswith(f"{url}: ") and says in row["error"], row["error"]
    assert "tasks.max_response_mb" in row["error"]
    assert peak < 20 * CAP  # a few copies of the cap at most, not the 100 MB the server had
    assert _Huge.sent < 30 * CAP  # the transfer stopped early (what socket buffers took aside)


def test_a_real_page_within_the_cap_reads_as_before(huge_site: str) -> None:
    """The gzip we ask for is inflated piece by piece: the page comes out whole, byte for byte."""
    assert len(PAGE) > 4 * 65536
    with _client(huge_site) as client:
        assert client.fetch_article("Grill Fish") == PAGE.decode("utf-8")
        row = mined_row(
            PlannedArticle("Grill Fish", 1, ("Food",)), client, parse_article, VisualFilter(), "crawl-0000"
        )
    assert row["status"] == "ok" and row["keep"] and row["n_steps"] == 19


def test_an_api_answer_past_the_cap_fails_the_walk_in_one_error(huge_site: str) -> None:
    with _client(huge_site) as client, pytest.raises(WikiHowError) as caught:
        client.category_members("Food and Entertaining")
    message = str(caught.value)
    assert message.startswith(f"{huge_site}/api.php?action=query") and "past the 1 MB cap" in message
    assert "\n" not in message and not caught.value.permanent
    assert _Huge.sent < 30 * CAP


def test_the_cap_is_a_tasks_setting_outside_the_data_hash() -> None:
    default = MineTasksConfig()
    assert default.max_response_mb == 20 and default.client().max_response_bytes == 20_000_000
    raised = MineTasksConfig(max_response_mb=50)
    assert raised.client().max_response_bytes == 50_000_000
    assert raised.row_hash() == default.row_hash()  # a page past it is an error row, retried anyway


def test_a_page_that_drips_forever_is_an_error_row_at_its_time_limit(huge_site: str) -> None:
    """httpx's timeout is per read: a body that keeps coming, slowly, was waited on without end."""
    item = PlannedArticle("Drip Page", 1, ("Food and Entertaining",))
    started = time.monotonic()
    with WikiHowClient(huge_site, rps=1000.0, robots_cache_s=0.0, max_response_s=1.0) as client:
        row = mined_row(item, client, parse_article, VisualFilter(), "crawl-0000")
    assert time.monotonic() - started < 5.0 and client.requests_made == 2  # robots.txt and the page, once
    assert (row["status"], row["keep"]) == ("error", False)
    assert row["error"].startswith(f"{huge_site}/Drip-Page: body still arriving after 1 s"), row["error"]
    assert "tasks.max_response_s" in row["error"]
    assert MineTasksConfig(max_response_s=3).client().max_response_s == 3
    assert MineTasksConfig(max_response_s=3).row_hash() == MineTasksConfig().row_hash()
