"""The demo site: wikiHow and YouTube stand-ins served on 127.0.0.1 from a background thread."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tasks.demo import mediawiki_api, wikihow_pages, youtube_pages
from tasks.demo.content import url_title
from tasks.demo.troubles import FEW_WORDS, Counters, Reported, Troubles, reported
from tasks.demo.world import World

log = logging.getLogger(__name__)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a slow (sleeping) handler must never keep the process alive
    block_on_close = False
    site: DemoSite


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "demo-site/1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        self._serve(b"")

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(b"", head=True)

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        self._serve(self.rfile.read(length) if length else b"")

    # -- plumbing ---------------------------------------------------------------------------------

    def _serve(self, body: bytes, head: bool = False) -> None:
        site = self.server.site
        self._head_only = head
        parts = urlsplit(self.path)
        path, params = unquote(parts.path), dict(parse_qsl(parts.query, keep_blank_values=True))
        site.requests.append(f"{self.command} {self.path}")
        troubles = site.troubles
        if site.counters.take("429", troubles.too_many_requests):
            self._send(
                429, b"Too Many Requests\n", "text/plain", {"Retry-After": str(troubles.retry_after_s)}
            )
            return
        slowed = not troubles.slow_ids or params.get("v") in troubles.slow_ids
        if troubles.slow_s > 0 and path.startswith(troubles.slow_prefix) and slowed:
            if site.stopping.wait(troubles.slow_s):
                return  # shutting down: drop the request as a dying server would
        try:
            self._route(site, path, params, body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeouts in the tests do exactly that)
        except Exception:  # a bug here must show up as a 500 in the client, not a hung request
            log.exception("demo site failed on %s", self.path)
            self._send(500, b"Internal Server Error\n", "text/plain")

    def _send(
        self,
        status: int,
        data: bytes,
        ctype: str,
        headers: dict[str, str] | None = None,
        declared_length: int | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(declared_length if declared_length is not None else len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not getattr(self, "_head_only", False):
            self.wfile.write(data)
            self.wfile.flush()

    def _json(self, obj: Any, status: int = 200) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=False).encode(), "application/json; charset=utf-8")

    def _html(self, text: str, status: int = 200) -> None:
        self._send(status, text.encode(), "text/html; charset=UTF-8")

    def _not_found(self) -> None:
        self._send(404, b"Not Found\n", "text/plain")

    # -- routes -----------------------------------------------------------------------------------

    def _route(self, site: DemoSite, path: str, params: dict[str, str], body: bytes) -> None:
        routes: dict[str, Callable[[DemoSite, dict[str, str], bytes], None]] = {
            "/robots.txt": lambda s, p, b: self._send(200, wikihow_pages.ROBOTS_TXT.encode(), "text/plain"),
            "/api.php": lambda s, p, b: self._json(mediawiki_api.handle(s.world.articles, p)),
            "/watch": self._watch,
            "/youtubei/v1/search": self._search,
            "/results": self._results,
            "/videoplayback": self._video,
            "/api/timedtext": self._timedtext,
        }
        if path in routes:
            routes[path](site, params, body)
        elif path.startswith("/Category:"):
            self._category(site, path[len("/Category:") :])
        else:
            self._article(site, path.lstrip("/"))

    def _article(self, site: DemoSite, slug: str) -> None:
        article = next((a for a in site.world.articles if url_title(a.title) == slug), None)
        if article is None:
            self._not_found()
            return
        self._html(wikihow_pages.article_html(article, site.url))

    def _category(self, site: DemoSite, slug: str) -> None:
        name = slug.replace("-", " ")
        tree = mediawiki_api.category_tree(site.world.articles)
        if name not in tree:
            self._not_found()
            return
        members = tree[name]
        subcats = [m.title.split(":", 1)[1] for m in members if m.ns == mediawiki_api.NS_CATEGORY]
        pages = [m.title for m in members if m.ns == mediawiki_api.NS_MAIN]
        self._html(wikihow_pages.category_html(name, subcats, pages))

    def _watch(self, site: DemoSite, params: dict[str, str], body: bytes) -> None:
        vid = params.get("v", "")
        if vid in site.troubles.server_error:
            # The page is the only request a probe makes (demo_extractors.DemoVideoIE), so failing it
            # fails the probe; checked before the bot check so a 503 does not use one up.
            self._send(503, b"Service Unavailable\n", "text/plain")
            return
        video = site.world.video(vid)
        bot = site.counters.take("bot", site.troubles.bot_check)
        if video is None:
            # An id the site never had: YouTube answers "Video unavailable".
            gone = {"playabilityStatus": youtube_pages.playability_status(Reported(0, 0, "removed"), False)}
            self._html(youtube_pages.watch_html(None, gone))
            return
        rep = reported(video, site.troubles)
        size = video.path.stat().st_size if video.path is not None and video.path.exists() else None
        self._html(youtube_pages.watch_html(video, youtube_pages.player_response(video, rep, size, bot)))

    def _hits(self, site: DemoSite, query: str) -> list[tuple[Any, Any]]:
        return [(v, reported(v, site.troubles)) for v in youtube_pages.search(site.world.videos, query)]

    def _search(self, site: DemoSite, params: dict[str, str], body: bytes) -> None:
        try:
            req = json.loads(body or b"{}")
            if "continuation" in req:
                query, offset = youtube_pages.parse_token(str(req["continuation"]))
            else:
                query, offset = str(req["query"]), 0
        except (ValueError, KeyError, TypeError):
            self._json({"error": {"code": 400, "message": "Request contains an invalid argument."}}, 400)
            return
        self._json(youtube_pages.search_page(self._hits(site, query), query, offset))

    def _results(self, site: DemoSite, params: dict[str, str], body: bytes) -> None:
        query = params.get("search_query", "")
        data = json.dumps(youtube_pages.search_page(self._hits(site, query), query, 0), ensure_ascii=False)
        self._html(f"<!DOCTYPE html><html><body><script>var ytInitialData = {data};</script></body></html>\n")

    def _video(self, site: DemoSite, params: dict[str, str], body: bytes) -> None:
        video = site.world.video(params.get("v", ""))
        if video is None or video.path is None or reported(video, site.troubles).status != "ok":
            self._send(403, b"Forbidden\n", "text/plain")
            return
        data = video.path.read_bytes()
        if video.id in site.troubles.corrupt_videos:
            # Destroy the container header (ftyp + moov sit first after +faststart): the download
            # succeeds, decoding fails as a damaged upload would.
            data = bytes((b * 7 + 13) % 256 for b in data[:4096]) + data[4096:]
        rng = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if rng:
            start = int(rng.group(1))
            end = int(rng.group(2)) if rng.group(2) else len(data) - 1
            if start >= len(data):
                self._send(416, b"", "video/mp4", {"Content-Range": f"bytes */{len(data)}"})
                return
            chunk = data[start : end + 1]
            headers = {
                "Content-Range": f"bytes {start}-{start + len(chunk) - 1}/{len(data)}",
                "Accept-Ranges": "bytes",
            }
            self._send(206, chunk, "video/mp4", headers)
            return
        self._send(200, data, "video/mp4", {"Accept-Ranges": "bytes"})

    def _timedtext(self, site: DemoSite, params: dict[str, str], body: bytes) -> None:
        video = site.world.video(params.get("v", ""))
        if video is None or reported(video, site.troubles).status != "ok":
            self._send(404, b"", "text/vtt")
            return
        max_words = FEW_WORDS if video.id in site.troubles.few_words else None
        text = video.caption_vtt(
            params.get("kind") == "asr", params.get("lang", ""), params.get("tlang"), max_words
        )
        if text is None:
            self._send(404, b"", "text/vtt")
            return
        data = text.encode()
        if video.id in site.troubles.truncated_captions:
            # Announce the whole file, send half, hang up: a transfer cut off mid-file.
            self.close_connection = True
            self._send(200, data[: len(data) // 2], "text/vtt; charset=utf-8", declared_length=len(data))
            return
        self._send(200, data, "text/vtt; charset=utf-8")


class DemoSite:
    """Serve a World on 127.0.0.1:port (0 = a free port) until close(); use as a context manager."""

    def __init__(
        self, world: World, port: int = 0, troubles: Troubles | None = None, host: str = "127.0.0.1"
    ):
        self.world = world
        self.troubles = troubles or Troubles()
        self.counters = Counters()
        self.stopping = threading.Event()
        # Recent request lines, for tests that count traffic (bounded: a CLI site may run for days).
        self.requests: deque[str] = deque(maxlen=100_000)
        self._server = _Server((host, port), _Handler)
        self._server.site = self
        bound_host, bound_port = self._server.server_address[:2]
        self.url = f"http://{bound_host!s}:{bound_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-site", daemon=True)
        self._thread.start()

    def set_troubles(self, troubles: Troubles | None = None) -> None:
        """Switch faults (and restart their request counters); no argument turns them all off."""
        self.troubles = troubles or Troubles()
        self.counters.reset()

    def set_world(self, world: World) -> None:
        """Serve another world (e.g. world.grow() for a re-crawl)."""
        self.world = world

    def close(self) -> None:
        """Stop serving and wake any request still sleeping in a slow trouble."""
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> DemoSite:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
