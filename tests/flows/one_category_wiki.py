"""A wiki of one category on loopback, for mining tests that need pages the demo site does not serve."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit


class OneCategoryWiki(BaseHTTPRequestHandler):
    """The API lists `titles` as the members of `category`, article paths answer from `pages`, paths in
    `failing` answer 500 and the rest 404. `hits` lists every path asked for (a subclass sets its own)."""

    category: ClassVar[str] = "Food and Entertaining"
    titles: ClassVar[list[str]] = []
    pages: ClassVar[dict[str, bytes]] = {}
    failing: ClassVar[frozenset[str]] = frozenset()
    hits: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        type(self).hits.append(url.path)
        if url.path == "/api.php":
            if parse_qs(url.query).get("cmtitle") != [f"Category:{self.category}"]:
                self._send(400, b"unexpected category", "text/plain")
                return
            members = [{"pageid": i + 1, "ns": 0, "title": t} for i, t in enumerate(self.titles)]
            self._send(200, json.dumps({"query": {"categorymembers": members}}).encode(), "application/json")
        elif url.path.lstrip("/") in self.pages:
            self._send(200, self.pages[url.path.lstrip("/")], "text/html; charset=utf-8")
        elif url.path in self.failing:
            self._send(500, b"Internal Server Error", "text/plain")
        else:
            self._send(404, b"Not Found", "text/plain")

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
