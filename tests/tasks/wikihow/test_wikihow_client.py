"""The wikiHow client's politeness without a network: retries, back-off, Retry-After, robots.txt, rate cap."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

import httpx
import pytest

from tasks import interrupts
from tasks.wikihow.client import Member, RobotsDisallowed, RobotsUnavailable, WikiHowClient, WikiHowError
from tasks.wikihow.crawl import walk_categories
from tasks.wikihow.politeness import RateLimiter, Robots, backoff_delay, retry_after_s

BASE = "http://wiki.test"


class Recorder:
    """A MockTransport handler that answers from a function and records every request."""

    def __init__(self, answer: Callable[[httpx.Request, int], httpx.Response]) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/robots.txt":
            return httpx.Response(404)
        return self.answer(request, len([r for r in self.requests if r.url.path != "/robots.txt"]))

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]


def make_client(handler: Recorder, sleeps: list[float], **kw: object) -> WikiHowClient:
    return WikiHowClient(
        BASE,
        transport=httpx.MockTransport(handler),
        limiter=RateLimiter(1000.0),
        sleep=sleeps.append,
        rng=random.Random(0),
        robots_cache_s=0.0,  # every test here serves its own robots.txt on the same fake host
        **kw,  # type: ignore[arg-type]
    )


def test_retry_after_is_honoured_on_429() -> None:
    rec = Recorder(
        lambda req, n: (
            httpx.Response(429, headers={"Retry-After": "7"}) if n < 3 else httpx.Response(200, text="ok")
        )
    )
    sleeps: list[float] = []
    with make_client(rec, sleeps) as client:
        assert client.fetch_article("Grill Fish") == "ok"
    assert sleeps == [7.0, 7.0]
    assert rec.paths() == ["/robots.txt", "/Grill-Fish", "/Grill-Fish", "/Grill-Fish"]


def test_5xx_and_timeouts_back_off_exponentially_with_jitter_then_give_up() -> None:
    def answer(req: httpx.Request, n: int) -> httpx.Response:
        if n % 2:
            raise httpx.ReadTimeout("slow", request=req)
        return httpx.Response(503)

    rec = Recorder(answer)
    sleeps: list[float] = []
    with make_client(rec, sleeps, max_retries=4, backoff_base_s=1.0, backoff_max_s=5.0) as client:
        with pytest.raises(WikiHowError) as info:
            client.fetch_article("Grill Fish")
    assert not info.value.permanent
    assert len(sleeps) == 4 and len(rec.paths()) == 1 + 5
    for attempt, delay in enumerate(sleeps):
        assert 0.0 <= delay <= min(5.0, 2.0**attempt)
    assert sleeps == [backoff_delay(a, 1.0, 5.0, rng) for rng in [random.Random(0)] for a in range(4)]


def test_404_is_permanent_and_not_retried() -> None:
    rec = Recorder(lambda req, n: httpx.Response(404, text="Not Found"))
    sleeps: list[float] = []
    with make_client(rec, sleeps) as client, pytest.raises(WikiHowError) as info:
        client.fetch_article("No Such Page")
    assert info.value.status == 404 and info.value.permanent
    assert sleeps == [] and rec.paths() == ["/robots.txt", "/No-Such-Page"]


def test_user_agent_is_descriptive_and_sent() -> None:
    rec = Recorder(lambda req, n: httpx.Response(200, text="ok"))
    with make_client(rec, [], user_agent="my-bot/1.0 (+mailto:me@example.org)") as client:
        client.fetch_article("X")
    assert {r.headers["user-agent"] for r in rec.requests} == {"my-bot/1.0 (+mailto:me@example.org)"}
    assert "howto" in WikiHowClient(BASE, transport=httpx.MockTransport(rec)).user_agent


def robots_site(robots: httpx.Response) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/robots.txt":
            return robots
        return httpx.Response(200, text="page")

    return handler


def test_robots_txt_disallow_stops_the_request_before_it_is_made() -> None:
    seen: list[str] = []
    inner = robots_site(httpx.Response(200, text="User-agent: *\nDisallow: /Secret\nCrawl-delay: 3\n"))

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return inner(request)

    limiter = RateLimiter(10.0)
    client = WikiHowClient(
        BASE, transport=httpx.MockTransport(handler), limiter=limiter, sleep=lambda s: None
    )
    with client, pytest.raises(RobotsDisallowed):
        client.fetch_article("Secret Page")
    assert seen == ["/robots.txt"]
    assert limiter.interval_s == 3.0  # Crawl-delay slows the shared limiter down


def test_robots_server_error_is_unavailable_and_missing_means_allow_all() -> None:
    broken = WikiHowClient(BASE, transport=httpx.MockTransport(robots_site(httpx.Response(500))),
                           limiter=RateLimiter(1000.0), sleep=lambda s: None, max_retries=1,
                           robots_cache_s=0.0)  # fmt: skip
    with broken, pytest.raises(RobotsUnavailable, match="HTTP 500"):  # nothing fetched, nothing claimed
        broken.fetch_article("Anything")
    missing = WikiHowClient(BASE, transport=httpx.MockTransport(robots_site(httpx.Response(404))),
                            limiter=RateLimiter(1000.0), robots_cache_s=0.0)  # fmt: skip
    with missing:
        assert missing.fetch_article("Anything") == "page"


def test_robots_txt_is_fetched_once_per_site_for_all_clients() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return robots_site(httpx.Response(200, text="User-agent: *\nDisallow: /Private\n"))(request)

    for title in ("One", "Two", "Three"):
        client = WikiHowClient("http://robots-cache.test", transport=httpx.MockTransport(handler),
                               limiter=RateLimiter(1000.0), robots_cache_s=60.0)  # fmt: skip
        with client:
            client.fetch_article(title)
    assert seen == ["/robots.txt", "/One", "/Two", "/Three"]


def test_category_members_follow_continuation() -> None:
    pages = [{"pageid": i, "ns": 0, "title": f"Task {i}"} for i in range(5)]

    def answer(req: httpx.Request, n: int) -> httpx.Response:
        params = dict(req.url.params)
        assert params["list"] == "categorymembers" and params["cmtitle"] == "Category:Food and Entertaining"
        start = int(params.get("cmcontinue", "page|0").split("|")[1])
        body: dict[str, object] = {"query": {"categorymembers": pages[start : start + 2]}}
        if start + 2 < len(pages):
            body["continue"] = {"cmcontinue": f"page|{start + 2}", "continue": "-||"}
        return httpx.Response(200, json=body)

    rec = Recorder(answer)
    with make_client(rec, []) as client:
        members = client.category_members("Food and Entertaining", page_size=2)
    assert [m.title for m in members] == [f"Task {i}" for i in range(5)]
    assert len(rec.paths()) == 1 + 3


def test_continuation_that_repeats_is_an_error() -> None:
    rec = Recorder(lambda req, n: httpx.Response(200, json={"query": {"categorymembers": []},
                                                            "continue": {"cmcontinue": "same"}}))  # fmt: skip
    with make_client(rec, []) as client, pytest.raises(WikiHowError, match="loops"):
        client.category_members("X")


def test_a_listing_that_never_ends_is_refused_after_max_pages() -> None:
    """Fresh tokens each time pass the loop check: without a page cap the walk asked forever."""
    rec = Recorder(lambda req, n: httpx.Response(200, json={"query": {"categorymembers": [
        {"pageid": n, "ns": 0, "title": f"Task {n}"}]}, "continue": {"cmcontinue": f"page|{n}"}}))  # fmt: skip
    with make_client(rec, []) as client, pytest.raises(WikiHowError) as caught:
        client.category_members("X", max_pages=5)
    assert str(caught.value) == (
        "API listing of Category:X still continues after 5 pages (5 members): refused as endless"
    )
    assert len(rec.paths()) == 1 + 5  # robots.txt and the five pages


def test_a_page_with_more_members_than_asked_is_refused() -> None:
    members = [{"pageid": i, "ns": 0, "title": f"Task {i}"} for i in range(3)]
    rec = Recorder(lambda req, n: httpx.Response(200, json={"query": {"categorymembers": members}}))
    with make_client(rec, []) as client:
        with pytest.raises(WikiHowError, match="lists 3 members, more than the 2 asked"):
            client.category_members("X", page_size=2)
        assert len(client.category_members("X", page_size=3)) == 3


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ('{"query": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),  # was a RecursionError
        ('{"error": "boom"}', "API error for Category:X: boom"),  # each below was an AttributeError,
        ('{"query": []}', "not a MediaWiki category listing"),  # a KeyError or a ValueError traceback
        ('{"query": {"categorymembers": ["Task"]}}', "not a MediaWiki category listing"),
        (
            '{"query": {"categorymembers": [{"pageid": "x", "title": "T"}]}}',
            "not a MediaWiki category listing",
        ),
        ('{"query": {"categorymembers": [{"pageid": 1}]}}', "not a MediaWiki category listing"),
        (
            '{"query": {"categorymembers": []}, "continue": ["cmcontinue"]}',
            "not a MediaWiki category listing",
        ),
    ],
    ids=["deep", "error-text", "query-list", "member-text", "pageid-text", "no-title", "continue-list"],
)
def test_an_api_answer_in_another_shape_is_one_wikihow_error(body: str, says: str) -> None:
    rec = Recorder(
        lambda req, n: httpx.Response(200, text=body, headers={"content-type": "application/json"})
    )
    with make_client(rec, []) as client, pytest.raises(WikiHowError, match=says) as raised:
        client.category_members("X")
    assert "\n" not in str(raised.value)


def test_walk_has_depth_limit_and_cycle_guard() -> None:
    tree = {
        "Root": [Member(1, 14, "Category:A"), Member(2, 0, "Top Task")],
        "A": [Member(3, 14, "Category:B"), Member(4, 14, "Category:Root"), Member(5, 0, "Task A")],
        "B": [Member(6, 14, "Category:A"), Member(7, 0, "Task B")],
    }
    calls: list[str] = []

    def members(category: str) -> list[Member]:
        calls.append(category)
        return tree.get(category, [])

    found = walk_categories(["Root"], members, max_depth=5)
    assert sorted(calls) == ["A", "B", "Root"]  # the A<->B and A->Root cycles are walked once
    paths = {a.title: a.category_path for a in found}
    assert paths == {"Top Task": ("Root",), "Task A": ("A", "Root"), "Task B": ("B", "A", "Root")}
    calls.clear()
    shallow = walk_categories(["Root"], members, max_depth=1)
    assert calls == ["Root", "A"] and {a.title for a in shallow} == {"Top Task", "Task A"}


def test_rate_limiter_spaces_requests() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)

    limiter = RateLimiter(2.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        limiter.wait()
    assert slept == [0.5, 1.0]
    now[0] += 10.0
    limiter.wait()
    assert slept == [0.5, 1.0]  # idle time is not banked into a burst beyond one request


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("5", 5.0), (None, None), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_retry_after_parsing(header: str | None, seconds: float | None) -> None:
    assert retry_after_s(header, now=1445412480.0) == seconds


def test_robots_parsing_for_our_user_agent() -> None:
    robots = Robots("User-agent: howto-dataset-miner\nDisallow: /\n\nUser-agent: *\nAllow: /\n")
    assert not robots.allowed("howto-dataset-miner/0.1 (research)", f"{BASE}/Grill-Fish")
    assert robots.allowed("other-bot/2.0", f"{BASE}/Grill-Fish")


def test_no_request_after_a_stop_signal(monkeypatch: pytest.MonkeyPatch) -> None:
    """After Ctrl-C or SIGTERM the tasks stage's shard stops at its next request, not after its last page."""
    monkeypatch.setattr(interrupts, "_seen", threading.Event())
    rec = Recorder(lambda req, n: httpx.Response(200, text=f"page {n}"))
    with make_client(rec, []) as client:
        assert client.fetch_article("Grill Fish") == "page 1"
        interrupts._seen.set()  # what the CLI's handler does on the signal
        with pytest.raises(KeyboardInterrupt, match="Ctrl-C: no more requests to wiki.test"):
            client.fetch_article("Marinate Pork")
    assert rec.paths() == ["/robots.txt", "/Grill-Fish"]
