"""robots.txt that cannot be fetched (429, 5xx, network) is retried and reported as such, never as a
disallow, and never remembered: a later try (Prefect's retry of the shard) fetches it again."""

from __future__ import annotations

import random
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tasks.demo.content import ARTICLES
from tasks.demo.site import DemoSite
from tasks.demo.troubles import Troubles
from tasks.demo.world import World
from tasks.tasks.rows import mined_row
from tasks.wikihow.client import (
    RobotsDisallowed,
    RobotsUnavailable,
    SiteUnreachable,
    WikiHowClient,
    WikiHowError,
)
from tasks.wikihow.crawl import PlannedArticle
from tasks.wikihow.filters import VisualFilter
from tasks.wikihow.parser import parse_article
from tasks.wikihow.politeness import RateLimiter, Robots

RULES = "User-agent: *\nDisallow: /Secret\n"


@pytest.mark.parametrize(
    ("status", "allows_open", "allows_secret"),
    [
        (200, True, False),  # a real file: its rules
        (404, True, True),  # RFC 9309: 4xx means there is no file, so everything is allowed
        (410, True, True),
        (403, True, True),
        (429, None, None),  # unreachable for now: no rules at all, ask again
        (500, None, None),
        (503, None, None),
        (501, None, None),
    ],
)
def test_robots_rules_from_the_status_of_its_answer(
    status: int, allows_open: bool | None, allows_secret: bool | None
) -> None:
    robots = Robots.from_status(status, RULES)
    if allows_open is None:
        assert robots is None
    else:
        assert robots is not None
        assert robots.allowed("bot", "http://w.test/Open") is allows_open
        assert robots.allowed("bot", "http://w.test/Secret") is allows_secret


class FlakyRobots:
    """A MockTransport handler whose robots.txt fails with `failure` until `fixed`; pages answer "page"."""

    def __init__(self, failure: Callable[[httpx.Request], httpx.Response]) -> None:
        self.failure = failure
        self.fixed = False
        self.robots_requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != "/robots.txt":
            return httpx.Response(200, text="page")
        self.robots_requests += 1
        return httpx.Response(200, text=RULES) if self.fixed else self.failure(request)


def raise_(exc: type[httpx.TransportError]) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        raise exc("no answer", request=request)

    return answer


FAILURES: dict[str, tuple[Callable[[httpx.Request], httpx.Response], str]] = {
    "429 with Retry-After": (lambda r: httpx.Response(429, headers={"Retry-After": "3"}), "HTTP 429"),
    "503": (lambda r: httpx.Response(503), "HTTP 503"),
    "connection reset": (raise_(httpx.ReadError), "ReadError"),
    "timeout": (raise_(httpx.ReadTimeout), "ReadTimeout"),
}


def mock_client(base: str, handler: FlakyRobots, sleeps: list[float]) -> WikiHowClient:
    # robots_cache_s on (the default): only a fetched file may be remembered, never a failure.
    return WikiHowClient(base, transport=httpx.MockTransport(handler), limiter=RateLimiter(1000.0),
                         sleep=sleeps.append, rng=random.Random(0), max_retries=2)  # fmt: skip


@pytest.mark.parametrize("name", list(FAILURES))
def test_unfetchable_robots_is_retried_reported_and_not_remembered(name: str) -> None:
    failure, says = FAILURES[name]
    base = f"http://robots-{name.replace(' ', '-')}.test"  # the process-wide cache is per site
    handler = FlakyRobots(failure)
    sleeps: list[float] = []
    with mock_client(base, handler, sleeps) as client, pytest.raises(RobotsUnavailable) as info:
        client.fetch_article("Open")
    message = str(info.value)
    assert "robots.txt could not be fetched" in message and says in message and "after 3 tries" in message
    assert not isinstance(info.value, WikiHowError | RobotsDisallowed)  # no row: the shard fails
    assert handler.robots_requests == 3 and len(sleeps) == 2
    if "Retry-After" in name:
        assert sleeps == [3.0, 3.0]
    # The site answers again: the next try (a new client, as a Prefect retry makes) asks again.
    handler.fixed = True
    with mock_client(base, handler, []) as client:
        assert client.fetch_article("Open") == "page"
        with pytest.raises(RobotsDisallowed):
            client.fetch_article("Secret")
    assert handler.robots_requests == 4


def test_retry_after_too_long_for_robots_is_reported_as_such() -> None:
    handler = FlakyRobots(lambda r: httpx.Response(429, headers={"Retry-After": "86400"}))
    with mock_client("http://robots-long-wait.test", handler, []) as client:
        with pytest.raises(RobotsUnavailable, match=r"could not be fetched: HTTP 429 .*Retry-After 86400s"):
            client.fetch_article("Open")
    assert handler.robots_requests == 1


def test_unfetchable_robots_fails_the_shard_instead_of_failing_articles_for_good() -> None:
    handler = FlakyRobots(lambda r: httpx.Response(503))
    item = PlannedArticle("Grill Fish", 1, ("Food and Entertaining",))
    with mock_client("http://robots-rows.test", handler, []) as client, pytest.raises(RobotsUnavailable):
        mined_row(item, client, parse_article, VisualFilter(), "crawl-0000")


# -- against the demo site ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSite]:
    # Articles only (as in test_wikihow_demo_site.py): robots.txt needs no rendered videos.
    world = World(seed=0, generation=0, cache_dir=Path(tmp_path_factory.mktemp("world")), articles=ARTICLES,
                  videos=[])  # fmt: skip
    with DemoSite(world) as demo:
        yield demo


def demo_client(url: str, agent: str, sleeps: list[float], **kw: float) -> WikiHowClient:
    # A User-Agent of its own per test: the process-wide robots cache is per (site, User-Agent).
    return WikiHowClient(url, limiter=RateLimiter(500.0), sleep=sleeps.append, user_agent=agent,
                         max_retries=2, **kw)  # type: ignore[arg-type]  # fmt: skip


def robots_gets(site: DemoSite) -> int:
    return sum(1 for r in site.requests if r == "GET /robots.txt")


def test_demo_robots_429_past_the_retries_is_unavailable_then_fetched_again(site: DemoSite) -> None:
    title = ARTICLES[0].title
    before = robots_gets(site)
    sleeps: list[float] = []
    site.set_troubles(Troubles(too_many_requests=3, retry_after_s=2))
    try:
        with demo_client(site.url, "robots-429-test/1.0", sleeps) as client:
            with pytest.raises(RobotsUnavailable, match=r"robots.txt could not be fetched: HTTP 429"):
                client.fetch_article(title)
    finally:
        site.set_troubles()
    assert sleeps == [2.0, 2.0] and robots_gets(site) == before + 3
    with demo_client(site.url, "robots-429-test/1.0", []) as client:  # what a Prefect retry does
        assert title in client.fetch_article(title)
    assert robots_gets(site) == before + 4


def test_demo_robots_timeout_is_unavailable_then_fetched_again(site: DemoSite) -> None:
    title = ARTICLES[0].title
    site.set_troubles(Troubles(slow_s=3.0, slow_prefix="/robots.txt"))
    try:
        with demo_client(site.url, "robots-slow-test/1.0", [], timeout_s=0.3) as client:
            with pytest.raises(RobotsUnavailable, match=r"could not be fetched: .*ReadTimeout after 3 tries"):
                client.fetch_article(title)
    finally:
        site.set_troubles()
    with demo_client(site.url, "robots-slow-test/1.0", []) as client:
        assert title in client.fetch_article(title)


def test_refused_first_connection_fails_at_once_later_ones_are_retried() -> None:
    handler = FlakyRobots(raise_(httpx.ConnectError))
    sleeps: list[float] = []
    base = "http://refused-first.test"
    with mock_client(base, handler, sleeps) as client, pytest.raises(SiteUnreachable) as info:
        client.fetch_article("Open")
    assert f"cannot connect to {base}" in str(info.value) and not isinstance(info.value, WikiHowError)
    assert handler.robots_requests == 1 and sleeps == []  # one try, no back-off

    # Once the site has answered, a refused connection is a blip (a restart): retried with back-off.
    paths: list[str] = []

    def answers_once(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if len(paths) == 1:
            return httpx.Response(200, text=RULES)
        raise httpx.ConnectError("refused", request=request)

    client = WikiHowClient("http://refused-later.test", transport=httpx.MockTransport(answers_once),
                           limiter=RateLimiter(1000.0), sleep=sleeps.append, max_retries=2)  # fmt: skip
    with client, pytest.raises(WikiHowError, match=r"ConnectError after 3 tries"):
        client.fetch_article("Open")
    assert paths == ["/robots.txt", "/Open", "/Open", "/Open"] and len(sleeps) == 2


def test_unreachable_site_fails_at_once_not_disallowed() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps: list[float] = []
    with demo_client(f"http://127.0.0.1:{port}", "robots-down-test/1.0", sleeps, timeout_s=2.0) as client:
        with pytest.raises(SiteUnreachable, match=rf"cannot connect to http://127.0.0.1:{port} "):
            client.fetch_article("Anything")
    assert sleeps == [] and client.requests_made == 1
