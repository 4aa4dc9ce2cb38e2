"""One YoutubeClient per thread for one shard's work, closed together, with the shard's request totals."""

from __future__ import annotations

import threading
from collections.abc import Callable

from tasks.youtube.access import YoutubeAccess
from tasks.youtube.client import YoutubeClient, checked_secrets
from tasks.youtube.messages import merge_counts


class ThreadClients:
    """Hands each worker thread its own client (YoutubeDL objects are not thread-safe).

    The secrets are read once, when the pool is made: make it in the task's own thread, where the
    Prefect run context (needed for a Secret block) is; worker threads do not inherit it.
    """

    def __init__(self, access: YoutubeAccess, make: Callable[[], YoutubeClient] | None = None) -> None:
        self.access = access
        if make is None:
            secrets = checked_secrets(access)
            make = lambda: YoutubeClient(access, secrets)  # noqa: E731 - a factory closed over the secrets
        self._make = make
        self._local = threading.local()
        self._lock = threading.Lock()
        self.clients: list[YoutubeClient] = []

    def get(self) -> YoutubeClient:
        """This thread's client, made on first use."""
        client: YoutubeClient | None = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._make()
            with self._lock:
                if client not in self.clients:
                    self.clients.append(client)
        return client

    @property
    def requests(self) -> int:
        return sum(c.requests for c in self.clients)

    @property
    def http_requests(self) -> int:
        return sum(c.http_requests for c in self.clients)

    @property
    def ytdlp_s(self) -> float:
        return sum(c.ytdlp_s for c in self.clients)

    @property
    def counts(self) -> dict[str, int]:
        """What yt-dlp said to any of the threads, by `level:class` (see YoutubeClient.counts)."""
        return merge_counts(c.counts for c in self.clients)

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def __enter__(self) -> ThreadClients:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
