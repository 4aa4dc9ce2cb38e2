"""Which redirects the wikiHow client follows: only those that stay on its own site (pure, no I/O).

robots.txt and the per-host rate limiter hold for one site only, so a redirect to another host (a cloud
metadata address, a service on localhost) would be a request that neither covers, made on a page's say-so.
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import httpx

# The statuses httpx (and browsers) follow when they carry a Location header.
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# RFC 9309 asks crawlers to follow at least five redirects for robots.txt; real article moves take one or two.
MAX_REDIRECTS = 10
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in; host lower-cased."""
    try:
        parts = urlsplit(url)
    except ValueError:  # "http://[x" (an unclosed IPv6 bracket): no host at all, so no site of ours
        return "", "", None
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:  # "host:99999" or "host:abc": no port we could be on
        port = -1
    return scheme, (parts.hostname or "").lower(), port if port is not None else _DEFAULT_PORTS.get(scheme)


def same_site(site_url: str, target_url: str) -> bool:
    """True when `target_url` is on the site of `site_url`: same scheme, host and port, or the same host moved
    from http to https on the default ports (a site's usual upgrade). Another port of the same host is another
    site: robots.txt covers one scheme, host and port (RFC 9309 section 2.3), and a second port is often
    another service (an admin API, a database's HTTP interface), just what a hostile redirect aims at."""
    scheme, host, port = _origin(site_url)
    to_scheme, to_host, to_port = _origin(target_url)
    if not host or to_host != host:
        return False
    if (to_scheme, to_port) == (scheme, port):
        return True
    return (scheme, port, to_scheme, to_port) == ("http", 80, "https", 443)


def redirect_target(url: str, status: int, location: str | None) -> str | None:
    """The absolute URL a `status` answer to `url` redirects to, or None when it is no redirect to follow. A
    Location urllib cannot parse ("http://[x") comes back as it was: `same_site` finds no site in it, so it is
    refused like any off-site one (a ValueError here ended the mining shard in a traceback)."""
    if status not in REDIRECT_STATUSES or not location:
        return None
    try:
        return urljoin(url, location.strip())
    except ValueError:
        return location.strip()


def unparsable_location(exc: httpx.TransportError) -> str | None:
    """Why httpx refused a redirect's Location (a control character in it), else None. httpx builds the next
    request of every redirect answer, even one it is not to follow, so such an answer never reaches the client:
    it is a RemoteProtocolError raised from the InvalidURL, the same on every request, never a dropped
    connection worth retrying."""
    if isinstance(exc, httpx.RemoteProtocolError) and isinstance(exc.__context__, httpx.InvalidURL):
        return str(exc.__context__)
    return None
