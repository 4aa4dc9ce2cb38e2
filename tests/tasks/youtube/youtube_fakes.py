"""A scripted stand-in for YoutubeDL: answers or raises real yt-dlp errors in a given order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from yt_dlp import YoutubeDL
from yt_dlp.utils import DownloadError

from tasks.youtube.access import AccessSecrets, YoutubeAccess
from tasks.youtube.client import YoutubeClient
from tasks.youtube.politeness import Politeness, PolitenessSettings
from tasks.youtube.thread_clients import ThreadClients

FAST = PolitenessSettings(
    requests_per_s=0, jitter_s=0, backoff_base_s=0.001, backoff_max_s=0.01, max_backoffs=3
)
ACCESS = YoutubeAccess(politeness=FAST)


class ScriptedYDL:
    """`answers[url]` is a list consumed one call at a time: a dict is returned, a str is raised."""

    def __init__(self, answers: dict[str, list[Any]] | Callable[[str], Any]) -> None:
        self.answers = answers
        self.params: dict[str, Any] = {}
        self.calls: list[str] = []

    def __enter__(self) -> ScriptedYDL:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def extract_info(self, url: str, download: bool = True, **_: Any) -> Any:
        self.calls.append(url)
        answer = self.answers(url) if callable(self.answers) else self.answers[url].pop(0)
        if isinstance(answer, str):
            raise DownloadError(f"ERROR: {answer}")
        return answer

    sanitize_info = staticmethod(YoutubeDL.sanitize_info)


def client(answers: Any, access: YoutubeAccess = ACCESS) -> tuple[YoutubeClient, ScriptedYDL]:
    """A client over one scripted YoutubeDL (every request kind shares it), no secrets, its own breaker."""
    ydl = ScriptedYDL(answers)
    made = YoutubeClient(
        access, AccessSecrets(), Politeness(access.politeness), ydl_factory=lambda params: ydl
    )
    return made, ydl


def clients(client: YoutubeClient) -> ThreadClients:
    """A shard's thread clients that all hand out `client`."""
    return ThreadClients(client.access, lambda: client)
