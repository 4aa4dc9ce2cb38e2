"""A test's own HTTP server on 127.0.0.1, for answers the demo site does not give (hostile, broken, huge)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve `handler` on a free loopback port; yields the base URL, and stops the server however the test
    ends (no thread or socket outlives it)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def files_handler(bodies: Mapping[str, bytes]) -> type[BaseHTTPRequestHandler]:
    """A quiet handler that answers GET /<name> with `bodies[name]` (a media format's bytes, say); the mapping
    is read at each request, so a fixture may fill it after the handler is made."""

    class Files(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = bodies[self.path.strip("/")]
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    return Files


class CountingHandler(BaseHTTPRequestHandler):
    """A quiet handler for servers that send far more than a client should take: `stream` writes until the
    client hangs up, counting in the class's `sent` what got out (into the client, or the sockets' buffers).
    Each subclass has its own count; `counting` resets it."""

    sent = 0

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def stream(self, chunks: Iterable[bytes]) -> None:
        try:
            for chunk in chunks:
                self.wfile.write(chunk)
                type(self).sent += len(chunk)
        except OSError:  # the client hung up: it read no more
            pass


@contextmanager
def counting(handler: type[CountingHandler]) -> Iterator[str]:
    """`serving(handler)` with its `sent` count reset first."""
    handler.sent = 0
    with serving(handler) as url:
        yield url
