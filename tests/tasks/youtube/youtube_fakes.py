"""A scripted stand-in for YoutubeDL: answers or raises real yt-dlp errors in a given order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from yt_dlp import YoutubeDL
from yt_dlp.utils import DownloadError

from tasks.youtube.client import ClientSettings, YoutubeClient
from tasks.youtube.politeness import Politeness, PolitenessSettings

FAST = PolitenessSettings(
    requests_per_s=0, jitter_s=0, backoff_base_s=0.001, backoff_max_s=0.01, max_backoffs=3
)


class ScriptedYDL:
    """`answers[url]` is a list consumed one call at a time: a dict is returned, a str is raised."""

    def __init__(self, answers: dict[str, list[Any]] | Callable[[str], Any]) -> None:
        self.answers = answers
        self.params: dict[str, Any] = {}
        self.calls: list[str] = []

    def extract_info(self, url: str, download: bool = True, **_: Any) -> Any:
        assert download is False
        self.calls.append(url)
        answer = self.answers(url) if callable(self.answers) else self.answers[url].pop(0)
        if isinstance(answer, str):
            raise DownloadError(f"ERROR: {answer}")
        return answer

    sanitize_info = staticmethod(YoutubeDL.sanitize_info)


def client(answers: Any, settings: ClientSettings | None = None) -> tuple[YoutubeClient, ScriptedYDL]:
    ydl = ScriptedYDL(answers)
    settings = settings or ClientSettings(politeness=FAST)
    return YoutubeClient(settings, Politeness(settings.politeness), ydl_factory=lambda s: ydl), ydl
