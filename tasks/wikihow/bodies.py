"""A GET whose body is read up to a byte cap and a time limit: a hostile or broken server can send gigabytes (or
a small gzip body that inflates to them), which httpx would hold in memory, or drip a body a byte at a time,
which httpx's timeout (per read, not per body) would wait on for days."""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import httpx

# Far above any real article page (hundreds of KB of HTML) or API answer (500 category members: ~50 KB).
DEFAULT_MAX_BYTES = 20_000_000
# A real article page is ~60 KB gzipped and the largest body allowed 20 MB: at a slow 200 KB/s that is 100 s.
DEFAULT_MAX_SECONDS = 120.0
# Headers that describe the body as sent: the body handed back is the decoded one.
_TRANSFER_HEADERS = {"content-encoding", "content-length", "transfer-encoding"}
# gzip (what we ask for) is inflated here in pieces of this size: httpx inflates each network read whole,
# and 64 KiB of a gzip bomb is 64 MB. (Other codings, which we never ask for, are left to httpx.)
_PIECE = 1 << 16


class BodyTooLarge(Exception):
    """The answer's body is past the cap; the message names the URL and the cap."""


class BodyTooSlow(Exception):
    """The answer's body was still arriving at the time limit; the message names the URL and the limit."""


def get_capped(
    http: httpx.Client,
    url: str,
    params: dict[str, Any] | None,
    max_bytes: int,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> httpx.Response:
    """GET `url` and read its body (decoded) while it stays within `max_bytes`: a Content-Length past the
    cap is refused before any byte of the body is read, any other body as soon as it passes the cap. A body
    still arriving `max_seconds` after the request is refused at its next piece (a silent server is ended by
    httpx's read timeout before that)."""
    deadline = time.monotonic() + max_seconds
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
            if time.monotonic() > deadline:
                raise BodyTooSlow(
                    f"{response.url}: body still arriving after {max_seconds:g} s (stopped reading at"
                    f" {len(body)} bytes)"
                )
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
