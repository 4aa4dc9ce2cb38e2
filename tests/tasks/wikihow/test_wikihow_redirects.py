"""The wikiHow client follows redirects only within its site: two real servers on 127.0.0.1, the second one
(another port: another site) standing for an internal address a hostile page points the crawler at."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler

import pytest

from tasks.tasks.mine import reachable
from tasks.tasks.rows import mined_row
from tasks.wikihow.client import (
    OffSiteRedirect,
    RobotsDisallowed,
    RobotsUnavailable,
    WikiHowClient,
    WikiHowError,
)
from tasks.wikihow.crawl import PlannedArticle
from tasks.wikihow.filters import VisualFilter
from tasks.wikihow.parser import parse_article
from tasks.wikihow.politeness import RateLimiter
from tasks.wikihow.redirects import MAX_REDIRECTS, same_site
from tests.loopback import serving


def site(routes: dict[str, tuple[int, str]]) -> type[BaseHTTPRequestHandler]:
    """A handler class answering path (query left out) -> (status, Location or body), 404 elsewhere; it records
    the paths asked."""

    class Handler(BaseHTTPRequestHandler):
        asked: list[str] = []

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            type(self).asked.append(path)
            status, value = routes.get(path, (404, "not here"))
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header(
                    "Location", value.replace("{self}", f"http://127.0.0.1:{self.server.server_port}")
                )
                value = ""
            body = value.encode()
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    Handler.asked = []
    return Handler


@contextmanager
def two_sites(
    home: dict[str, tuple[int, str]], elsewhere: dict[str, tuple[int, str]]
) -> Iterator[tuple[WikiHowClient, str, type[BaseHTTPRequestHandler], type[BaseHTTPRequestHandler]]]:
    """A client on the first server; "{other}" in its Locations is the second server's URL."""
    other = site(elsewhere)
    with serving(other) as other_url:
        home_handler = site({k: (s, v.replace("{other}", other_url)) for k, (s, v) in home.items()})
        with serving(home_handler) as home_url:
            client = WikiHowClient(home_url, limiter=RateLimiter(1000.0), robots_cache_s=0.0, max_retries=0)
            with client:
                yield client, other_url, home_handler, other


SECRET = (200, "instance credentials")  # what the internal service would hand over


def test_a_page_redirecting_to_another_port_is_not_followed() -> None:
    home = {
        "/robots.txt": (200, "User-agent: *\nAllow: /\n"),
        "/Grill-Fish": (302, "{other}/latest/meta-data"),
    }
    with two_sites(home, {"/latest/meta-data": SECRET}) as (client, other_url, home_handler, other):
        with pytest.raises(OffSiteRedirect) as info:
            client.fetch_article("Grill Fish")
        assert other.asked == []  # type: ignore[attr-defined]
        assert info.value.permanent
        assert f"redirects to another site, {other_url}/latest/meta-data" in str(info.value)
        # Through the stage's row: that page's failure, with its reason, and the stage goes on.
        item = PlannedArticle("Grill Fish", 1, ("Food and Entertaining",))
        row = mined_row(item, client, parse_article, VisualFilter(), "crawl-0000")
        assert (row["status"], row["drop_reason"], row["keep"]) == ("failed", "off_site_redirect", False)
        assert "/Grill-Fish redirects to another site" in row["error"]
        assert other.asked == []  # type: ignore[attr-defined]


def test_an_api_answer_redirecting_off_the_site_fails_for_good() -> None:
    home = {"/robots.txt": (404, ""), "/api.php": (301, "{other}/api.php")}
    with two_sites(home, {}) as (client, _, _home, other):
        with pytest.raises(OffSiteRedirect) as info:
            client.category_members("Food and Entertaining")
        assert info.value.permanent  # Prefect's retries would get the same answer
        assert other.asked == []  # type: ignore[attr-defined]


def test_robots_txt_redirecting_off_the_site_is_unavailable_not_fetched_there() -> None:
    home = {"/robots.txt": (302, "{other}/robots.txt"), "/Grill-Fish": (200, "page")}
    with two_sites(home, {"/robots.txt": (200, "User-agent: *\nAllow: /\n")}) as (
        client,
        other_url,
        h,
        other,
    ):
        with pytest.raises(RobotsUnavailable, match=f"redirects to another site, {other_url}/robots.txt"):
            client.fetch_article("Grill Fish")
        assert other.asked == []  # type: ignore[attr-defined]
        assert h.asked == ["/robots.txt"]  # type: ignore[attr-defined]


class _Failed:
    """A task run's final state as Prefect's retry rule reads it: its result raises the task's error."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def result(self, raise_on_failure: bool = True) -> None:
        raise self.exc


def test_robots_txt_redirecting_off_the_site_fails_the_walk_without_its_retries() -> None:
    """A --base-url that redirects (https://wikihow.com to www.) answers the same 30 s later: the walk and
    the shards stop at once, as for an API answer redirecting off the site, not after two retries (60 s)."""
    home = {"/robots.txt": (302, "{other}/robots.txt"), "/api.php": (200, "{}")}
    with two_sites(home, {}) as (client, _, _home, _other):
        with pytest.raises(RobotsUnavailable) as info:
            client.category_members("Food and Entertaining")
    assert info.value.permanent
    assert not reachable(None, None, _Failed(info.value))  # Prefect's retry rule of the walk and the shards
    # robots.txt the site cannot serve for now (a 503) is still asked again on the task's retry
    with two_sites({"/robots.txt": (503, "busy")}, {}) as (client, _, _home, _other):
        with pytest.raises(RobotsUnavailable) as busy:
            client.category_members("Food and Entertaining")
    assert not busy.value.permanent
    assert reachable(None, None, _Failed(busy.value))


def test_a_redirect_within_the_site_is_followed_and_each_hop_checked_against_robots() -> None:
    home = {
        "/robots.txt": (200, "User-agent: *\nDisallow: /Secret\n"),
        "/Old-Name": (301, "/Grill-Fish"),  # relative, as servers often send
        "/Grill-Fish": (200, "the article"),
        "/Sneaky": (302, "{self}/Secret"),  # allowed path redirecting to a disallowed one
        "/Secret": SECRET,
    }
    with two_sites(home, {}) as (client, _, home_handler, _other):
        assert client.fetch_article("Old Name") == "the article"
        with pytest.raises(RobotsDisallowed):
            client.fetch_article("Sneaky")
        assert "/Secret" not in home_handler.asked  # type: ignore[attr-defined]
        # robots.txt once, then every hop as its own request (each waited on the rate limiter).
        assert client.requests_made == len(home_handler.asked) == 4  # type: ignore[attr-defined]


def test_a_location_that_is_no_url_is_a_failed_row_not_a_crashed_shard() -> None:
    """urllib cannot parse "http://[..." (an unclosed IPv6 bracket) though httpx passes it on: it raised a
    ValueError out of the client, past mined_row, and ended the mining shard in a traceback."""
    home = {"/robots.txt": (404, ""), "/Grill-Fish": (302, "http://[169.254.169.254/latest")}
    with two_sites(home, {}) as (client, _, home_handler, _other):
        with pytest.raises(
            OffSiteRedirect, match=r"redirects to another site, http://\[169\.254\.169\.254/latest"
        ):
            client.fetch_article("Grill Fish")
        item = PlannedArticle("Grill Fish", 1, ("Food and Entertaining",))
        row = mined_row(item, client, parse_article, VisualFilter(), "crawl-0000")
        assert (row["status"], row["drop_reason"]) == ("failed", "off_site_redirect")
        assert home_handler.asked == ["/robots.txt", "/Grill-Fish", "/Grill-Fish"]  # type: ignore[attr-defined]


def test_a_location_with_a_control_character_fails_the_page_for_good_unretried() -> None:
    """httpx refuses a Location holding '\\x01' (a RemoteProtocolError, as for a dropped connection): the client
    retried it with back-off and the page was an error row on every run. Now it is refused at once, like an
    off-site redirect; a robots.txt answering so is unavailable, and an API answer fails for good."""
    home = {
        "/robots.txt": (200, "User-agent: *\nAllow: /\n"),
        "/Grill-Fish": (302, "/Grill\x01Fish"),
        "/api.php": (301, "/api.php?\x01"),
    }
    handler = site(home)
    with serving(handler) as home_url:
        client = WikiHowClient(home_url, limiter=RateLimiter(1000.0), robots_cache_s=0.0, max_retries=3,
                               backoff_base_s=0.001, backoff_max_s=0.001)  # fmt: skip
        with client:
            with pytest.raises(
                OffSiteRedirect, match=r"/Grill-Fish redirects to a Location that is no URL"
            ) as info:
                client.fetch_article("Grill Fish")
            assert info.value.permanent
            assert handler.asked == ["/robots.txt", "/Grill-Fish"]  # type: ignore[attr-defined]
            item = PlannedArticle("Grill Fish", 1, ("Food and Entertaining",))
            row = mined_row(item, client, parse_article, VisualFilter(), "crawl-0000")
            assert (row["status"], row["drop_reason"], row["keep"]) == ("failed", "off_site_redirect", False)
            assert "non-printable" in row["error"]
            with pytest.raises(OffSiteRedirect) as api:
                client.category_members("Food and Entertaining")
            assert api.value.permanent
            assert handler.asked.count("/api.php") == 1  # type: ignore[attr-defined]
    robots = site({"/robots.txt": (302, "/robots\x01.txt"), "/Grill-Fish": (200, "page")})
    with serving(robots) as robots_url:
        with WikiHowClient(robots_url, limiter=RateLimiter(1000.0), robots_cache_s=0.0, max_retries=3,
                           backoff_base_s=0.001, backoff_max_s=0.001) as client:  # fmt: skip
            with pytest.raises(RobotsUnavailable, match="Location that is no URL"):
                client.fetch_article("Grill Fish")
        assert robots.asked == ["/robots.txt"]  # type: ignore[attr-defined]


def test_a_redirect_loop_within_the_site_ends() -> None:
    with two_sites({"/robots.txt": (404, ""), "/Loop": (302, "/Loop")}, {}) as (client, _, home_handler, _o):
        with pytest.raises(WikiHowError, match=f"more than {MAX_REDIRECTS} redirects"):
            client.fetch_article("Loop")
        assert home_handler.asked.count("/Loop") == MAX_REDIRECTS + 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("target", "same"),
    [
        ("https://www.wikihow.com/Grill-Fish", True),
        ("https://WWW.wikihow.com:443/Grill-Fish", True),  # case and the default port spelled out
        ("http://www.wikihow.com/Grill-Fish", False),  # a downgrade to plain http
        ("https://www.wikihow.com:8443/Grill-Fish", False),  # another port: another site and service
        ("https://wikihow.com/Grill-Fish", False),  # another host, even a parent domain
        ("https://www.wikihow.com@169.254.169.254/latest", False),  # user info before the real host
        ("https://169.254.169.254/latest/meta-data", False),
        ("file:///etc/passwd", False),
        ("https://www.wikihow.com:99999/", False),  # no such port
        ("https://[www.wikihow.com/Grill-Fish", False),  # no URL urllib can parse: no site at all
    ],
)
def test_same_site_from_https(target: str, same: bool) -> None:
    assert same_site("https://www.wikihow.com", target) is same


@pytest.mark.parametrize(
    ("site_url", "target", "same"),
    [
        ("http://www.wikihow.com", "https://www.wikihow.com/Grill-Fish", True),  # the usual upgrade
        ("http://127.0.0.1:8000", "https://127.0.0.1:8000/x", False),  # upgrades only on the default ports
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/x", True),
        ("http://127.0.0.1:8000", "http://localhost:8000/x", False),  # another name: its own robots.txt
    ],
)
def test_same_site_from_http(site_url: str, target: str, same: bool) -> None:
    assert same_site(site_url, target) is same
