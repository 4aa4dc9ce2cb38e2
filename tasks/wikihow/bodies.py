"""A GET whose body is read up to a byte cap: a hostile or broken server can send gigabytes (or a small gzip
body that inflates to them), and httpx would hold all of it in memory."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import httpx

# Far above any real article page (hundreds of KB of HTML) or API answer (500 category members: ~50 KB).
DEFAULT_MAX_BYTES = 20_000_000
# Headers that describe the body as sent: the body handed back is the decoded one.
_TRANSFER_HEADERS = {"content-encoding", "content-length", "transfer-encoding"}
# gzip (what we ask for) is inflated here in pieces of this size: httpx inflates each network read whole,
# and 64 KiB of a gzip bomb is 64 MB. (Other codings, which we never ask for, are left to httpx.)
_PIECE = 1 << 16


class BodyTooLarge(Exception):
    """The answer's body is past the cap; the message names the URL and the cap."""


def get_capped(http: httpx.Client, url: str, params: dict[str, Any] | None, max_bytes: int) -> httpx.Response:
    """GET `url` and read its body (decoded) while it stays within `max_bytes`: a Content-Length past the
    cap is refused before any byte of the body is read, any other body as soon as it passes the cap."""
    with http.stream("GET", url, params=params) as response:
        cap = f"the {max_bytes / 1e6:g} MB cap"
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise BodyTooLarge(f"{response.url}: Content-Length {int(declared)} bytes, past {cap}")
        gzip = response.headers.get("Content-Encoding", "").strip().lower() in ("gzip", "x-gzip")
        body = bytearray()
        for chunk in _gunzip(response.iter_raw()) if gzip else response.iter_bytes():
            body += chunk
            if len(body) > max_bytes:
                raise BodyTooLarge(f"{response.url}: body past {cap} (stopped reading at {len(body)} bytes)")
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _TRANSFER_HEADERS]
    return httpx.Response(
        response.status_code, headers=headers, content=bytes(body), request=response.request
    )


def _gunzip(raw: Iterable[bytes]) -> Iterator[bytes]:
    """A gzip body inflated in pieces of at most `_PIECE` bytes (httpx's errors for a corrupt one)."""
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    try:
        for data in raw:
            while data:
                yield inflater.decompress(data, _PIECE)
                data = inflater.unconsumed_tail
        yield inflater.flush()
    except zlib.error as exc:
        raise httpx.DecodingError(str(exc)) from exc
