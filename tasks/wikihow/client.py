"""wikiHow client over httpx: MediaWiki category members with continuation, article HTML, all politely."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from tasks.interrupts import refuse_after_stop
from tasks.wikihow.bodies import DEFAULT_MAX_BYTES, DEFAULT_MAX_SECONDS, BodyTooLarge, BodyTooSlow, get_capped
from tasks.wikihow.politeness import (
    RETRY_STATUSES,
    RateLimiter,
    Robots,
    backoff_delay,
    retry_after_s,
    shared_limiter,
)
from tasks.wikihow.redirects import MAX_REDIRECTS, redirect_target, same_site, unparsable_location
from tasks.wikihow.titles import page_slug

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = (
    "howto-dataset-miner/0.1 (research crawler for instructional-video tasks; polite, 1 req/s)"
)
CATEGORY_NS = 14
# Pages of one category listing (500 members each) before it is refused: wikiHow's largest categories hold a
# few thousand articles, and a server that hands out a fresh continuation token forever would walk forever.
MAX_LISTING_PAGES = 200

# robots.txt per (site, User-Agent) for this process: RFC 9309 lets crawlers cache it (up to 24 h).
# Only files fetched (or found missing) are kept: a failure to fetch one is asked again next time.
_ROBOTS_CACHE: dict[tuple[str, str], tuple[float, Robots]] = {}
_ROBOTS_FETCH_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_ROBOTS_LOCK = threading.Lock()
# Hosts that have answered this process at least once: only for them is a refused connection a blip worth
# retrying. A host that never answered is down or mistyped, and minutes of back-off would only hide that.
_ANSWERED: set[str] = set()


class WikiHowError(Exception):
    """A request failed for good (after retries, or with a status that retrying cannot fix)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def permanent(self) -> bool:
        """404/410 or robots.txt: asking again will not help."""
        return self.status in (403, 404, 410)


class RobotsDisallowed(WikiHowError):
    """robots.txt forbids this URL for our User-Agent."""

    def __init__(self, url: str) -> None:
        super().__init__(f"robots.txt disallows {url}", status=403)


class RobotsUnavailable(Exception):
    """robots.txt could not be fetched (429, 5xx, network errors, after the retries): nothing may be
    crawled until it can be. Not a WikiHowError on purpose: no article row should blame itself for it;
    the shard fails and Prefect's retry asks for robots.txt again, unless it is `permanent` (robots.txt
    redirects off the site: asking again 30 s later gets the same redirect)."""

    def __init__(self, reason: str, status: int | None = None, *, permanent: bool = False) -> None:
        super().__init__(
            f"robots.txt could not be fetched: {reason}; nothing is crawled until it can be"
            " (this is not a robots.txt disallow)"
        )
        self.status = status
        self.permanent = permanent


class OffSiteRedirect(WikiHowError):
    """A page (or robots.txt) redirects to another site: not followed, since robots.txt and the rate limiter
    cover this site only. Permanent: the page says the same on the next run, and a --base-url that redirects
    (https://wikihow.com to www.) wants fixing by hand."""

    def __init__(self, url: str, target: str) -> None:
        super().__init__(
            f"{url} redirects to another site, {target}: not followed (only redirects within the site of"
            " --base-url are)"
        )

    @property
    def permanent(self) -> bool:
        return True


class UnparsableRedirect(OffSiteRedirect):
    """A redirect whose Location is no URL httpx can parse ('\\x01' in it): on no site of ours, so refused as an
    off-site one is, and as permanent (retried, it ended as an error row after its back-off on every run)."""

    def __init__(self, url: str, reason: str) -> None:
        # WikiHowError's, not OffSiteRedirect's: there is no target URL to name, only why there is none.
        WikiHowError.__init__(self, f"{url} redirects to a Location that is no URL ({reason}): not followed")


class SiteUnreachable(Exception):
    """The very first connection to a site was refused (or its name did not resolve): it is down or the
    URL is wrong. Not retried, by the client or by Prefect: nothing would answer minutes later either."""

    def __init__(self, url: str, exc: Exception) -> None:
        super().__init__(
            f"cannot connect to {url} ({exc or type(exc).__name__}): is the site up and its URL right?"
        )


@dataclass(frozen=True)
class Member:
    """One category member from list=categorymembers: an article (ns 0) or a subcategory (ns 14)."""

    pageid: int
    ns: int
    title: str  # articles: "Grill Fish"; subcategories: "Category:Barbecue"


class WikiHowClient:
    """Talks to one wikiHow-like site; every request waits on the shared per-host rate limiter."""

    def __init__(
        self,
        base_url: str = "https://www.wikihow.com",
        *,
        rps: float = 1.0,
        timeout_s: float = 30.0,
        max_retries: int = 5,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
        retry_after_max_s: float = 300.0,
        user_agent: str = DEFAULT_USER_AGENT,
        respect_robots: bool = True,
        robots_cache_s: float = 3600.0,
        max_response_bytes: int = DEFAULT_MAX_BYTES,
        max_response_s: float = DEFAULT_MAX_SECONDS,
        transport: httpx.BaseTransport | None = None,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.user_agent = user_agent
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.retry_after_max_s = retry_after_max_s
        self.respect_robots = respect_robots
        self.robots_cache_s = robots_cache_s
        self.max_response_bytes = max_response_bytes
        self.max_response_s = max_response_s
        self.limiter = limiter or shared_limiter(urlsplit(self.base_url).netloc, rps)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._robots: Robots | None = None
        self.requests_made = 0
        self._http = httpx.Client(
            headers={"User-Agent": user_agent, "Accept-Encoding": "gzip"},
            timeout=timeout_s,
            follow_redirects=False,  # followed in _follow, hop by hop: same site, robots.txt, rate limit
            transport=transport,
        )

    def __enter__(self) -> WikiHowClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- public API -----------------------------------------------------------------------------
    def article_url(self, title: str) -> str:
        return f"{self.base_url}/{quote(page_slug(title), safe=':/()-,._~!$&*+;=@')}"

    def fetch_article(self, title: str) -> str:
        """The article page's HTML, decoded as UTF-8 (what wikiHow serves)."""
        response = self._get(self.article_url(title))
        return response.content.decode("utf-8", errors="replace")

    def category_members(
        self, category: str, page_size: int = 500, max_pages: int = MAX_LISTING_PAGES
    ) -> list[Member]:
        """Articles and subcategories of `category` ("Food and Entertaining" or "Category:..."), all pages
        of the listing followed through `continue` (500 per request is MediaWiki's cap for anonymous use),
        up to `max_pages` pages of at most `page_size` members (past either, a WikiHowError)."""
        cmtitle = category if category.startswith("Category:") else f"Category:{category}"
        params: dict[str, Any] = {
            "action": "query",
            "list": "categorymembers",
            "cmtitle": cmtitle,
            "cmtype": "page|subcat",
            "cmlimit": str(page_size),
            "format": "json",
            "formatversion": "2",
        }
        members: list[Member] = []
        seen_tokens: set[str] = set()
        while True:
            data = self._get_json(f"{self.base_url}/api.php", params)
            if "error" in data:
                error = data["error"] if isinstance(data["error"], dict) else {"info": data["error"]}
                info = error.get("info") or error.get("code")
                raise WikiHowError(f"API error for {cmtitle}: {info}")
            try:
                items = data.get("query", {}).get("categorymembers", [])
                if len(items) > page_size:  # a site that ignores cmlimit could hand out millions at a time
                    raise WikiHowError(
                        f"API answer for {cmtitle} lists {len(items)} members, more than the {page_size} asked"
                    )
                for item in items:
                    members.append(
                        Member(int(item.get("pageid", 0)), int(item.get("ns", 0)), str(item["title"]))
                    )
                token = (data.get("continue") or {}).get("cmcontinue")
                more = {str(k): str(v) for k, v in data["continue"].items()} if token else {}
            except (AttributeError, KeyError, TypeError, ValueError) as exc:
                # A site that answers in another shape (a list for an object, a member without a title)
                # ended the stage in an AttributeError's traceback.
                raise WikiHowError(
                    f"API answer for {cmtitle} is not a MediaWiki category listing ({type(exc).__name__}: {exc})"
                ) from None
            if not token:
                return members
            if token in seen_tokens:  # a server that repeats itself would loop forever
                raise WikiHowError(f"API continuation loops for {cmtitle} at {token!r}")
            if len(seen_tokens) + 1 >= max_pages:  # ... and so would one that never stops
                raise WikiHowError(
                    f"API listing of {cmtitle} still continues after {max_pages} pages ({len(members)} members):"
                    " refused as endless"
                )
            seen_tokens.add(token)
            params = {**params, **more}

    # -- plumbing -------------------------------------------------------------------------------
    def _get_json(self, url: str, params: dict[str, Any]) -> dict[str, Any]:
        response = self._get(url, params)
        try:
            data = response.json()
        except ValueError as exc:
            raise WikiHowError(f"{url}: response is not JSON ({exc})", status=response.status_code) from None
        except RecursionError:  # arrays in arrays thousands deep: json's decoder runs out of stack
            raise WikiHowError(
                f"{url}: response is JSON nested too deeply", status=response.status_code
            ) from None
        if not isinstance(data, dict):
            raise WikiHowError(f"{url}: unexpected JSON {type(data).__name__}")
        return data

    def _check_robots(self, url: str) -> None:
        if not self.respect_robots:
            return
        if self._robots is None:
            self._robots = self._load_robots()
            delay = self._robots.crawl_delay_s(self.user_agent)
            if delay:
                self.limiter.slow_down(delay)
        if not self._robots.allowed(self.user_agent, url):
            raise RobotsDisallowed(url)

    def _load_robots(self) -> Robots:
        """robots.txt, fetched once per site and process for `robots_cache_s` (shards share it); raises
        RobotsUnavailable, and keeps nothing, when it cannot be fetched."""
        key = (self.base_url, self.user_agent)
        with _ROBOTS_LOCK:
            lock = _ROBOTS_FETCH_LOCKS.setdefault(key, threading.Lock())
        with lock:  # parallel shards wait for one fetch instead of each asking
            cached = _ROBOTS_CACHE.get(key)
            if cached is not None and time.monotonic() - cached[0] < self.robots_cache_s:
                return cached[1]
            try:
                # 429, 5xx and network errors are retried there, with back-off or the Retry-After asked.
                response = self._follow(f"{self.base_url}/robots.txt", None, check_robots=False)
            except WikiHowError as exc:
                off_site = isinstance(exc, OffSiteRedirect)
                raise RobotsUnavailable(str(exc), exc.status, permanent=off_site) from None
            robots = Robots.from_status(response.status_code, response.text)
            if robots is None:  # a status not worth retrying (501, an unfollowed redirect...)
                raise RobotsUnavailable(
                    f"HTTP {response.status_code} for {response.url}", response.status_code
                )
            if self.robots_cache_s > 0:
                _ROBOTS_CACHE[key] = (time.monotonic(), robots)
            return robots

    def _get(self, url: str, params: dict[str, Any] | None = None) -> httpx.Response:
        response = self._follow(url, params)
        if response.status_code >= 400:
            raise WikiHowError(f"HTTP {response.status_code} for {response.url}", status=response.status_code)
        return response

    def _follow(
        self, url: str, params: dict[str, Any] | None, *, check_robots: bool = True
    ) -> httpx.Response:
        """GET `url`, following its redirects while they stay on the site of `base_url`: each hop is checked
        against robots.txt and waits on the rate limiter like any request (httpx's own following did neither).
        A redirect off the site raises OffSiteRedirect; more than MAX_REDIRECTS hops, a WikiHowError."""
        for _ in range(MAX_REDIRECTS + 1):
            if check_robots:
                self._check_robots(url)
            response = self._request(url, params)
            target = redirect_target(
                str(response.url), response.status_code, response.headers.get("Location")
            )
            if target is None:
                return response
            if not same_site(self.base_url, target):
                raise OffSiteRedirect(str(response.url), target)
            url, params = target, None  # the Location is the whole next URL, query included
        raise WikiHowError(f"{url}: more than {MAX_REDIRECTS} redirects", status=response.status_code)

    def _request(self, url: str, params: dict[str, Any] | None) -> httpx.Response:
        """GET with retries on 429/5xx/timeouts/connection errors: exponential back-off with jitter,
        or the server's Retry-After when it gives one. Other statuses are returned to the caller.
        A refused connection to a host that never answered raises SiteUnreachable at once; a body past
        `max_response_bytes`, or still arriving after `max_response_s`, a WikiHowError at once (read no
        further, and not asked again)."""
        attempt = 0
        while True:
            self.limiter.wait()
            refuse_after_stop(f"no more requests to {urlsplit(url).netloc}")  # a shard is 100 pages: minutes
            self.requests_made += 1
            try:
                response = get_capped(self._http, url, params, self.max_response_bytes, self.max_response_s)
            except BodyTooLarge as exc:
                raise WikiHowError(f"{exc} (tasks.max_response_mb)") from None
            except BodyTooSlow as exc:
                raise WikiHowError(f"{exc} (tasks.max_response_s)") from None
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                reason = unparsable_location(exc)
                if reason is not None:
                    raise UnparsableRedirect(str(exc.request.url), reason) from None
                host = urlsplit(url).netloc
                if isinstance(exc, httpx.ConnectError) and host not in _ANSWERED:
                    raise SiteUnreachable(f"{urlsplit(url).scheme}://{host}", exc) from None
                if attempt >= self.max_retries:
                    raise WikiHowError(
                        f"{url}: {type(exc).__name__} after {attempt + 1} tries: {exc}"
                    ) from None
                delay = backoff_delay(attempt, self.backoff_base_s, self.backoff_max_s, self._rng)
                log.warning("%s: %s; retry %d in %.1fs", url, type(exc).__name__, attempt + 1, delay)
            else:
                _ANSWERED.add(urlsplit(url).netloc)
                if response.status_code not in RETRY_STATUSES:
                    return response
                if attempt >= self.max_retries:
                    raise WikiHowError(
                        f"HTTP {response.status_code} for {response.url} after {attempt + 1} tries",
                        status=response.status_code,
                    )
                asked = retry_after_s(response.headers.get("Retry-After"))
                if asked is not None and asked > self.retry_after_max_s:
                    # Waiting that long inside one request would stall the shard; give up politely.
                    raise WikiHowError(
                        f"HTTP {response.status_code} for {response.url}: Retry-After {asked:.0f}s is too long",
                        status=response.status_code,
                    )
                delay = (
                    asked
                    if asked is not None
                    else backoff_delay(attempt, self.backoff_base_s, self.backoff_max_s, self._rng)
                )
                log.warning("%s: HTTP %d; retry %d in %.1fs", url, response.status_code, attempt + 1, delay)
            self._sleep(delay)
            attempt += 1
