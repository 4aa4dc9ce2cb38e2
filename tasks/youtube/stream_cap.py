"""A byte cap on what yt-dlp streams to disk (pure): its progress hook, and the error it raises.

yt-dlp's `max_filesize` refuses a file by the size the server announces (Content-Length) before the
body; a body it cannot size first (no Content-Length, chunked or compressed transfer, fragments) it
writes whole. Its progress hooks see the bytes written so far after every block, and an exception
raised in a hook ends that download there, so the cap holds for every body, sized or not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

ProgressHook = Callable[[Mapping[str, Any]], None]


class StreamCapExceeded(Exception):
    """A download passed its byte cap while streaming. Not one of yt-dlp's error classes, so that no
    layer of yt-dlp catches it as a failed fragment or subtitle: it reaches the client, which removes
    the partial file (`partial`) and reports the cap."""

    def __init__(self, read: int, cap: int, partial: str | None) -> None:
        super().__init__(f"stopped after {read} bytes, past the cap of {cap} bytes")
        self.read = read
        self.cap = cap
        self.partial = partial


def stream_cap_hook(cap: int) -> ProgressHook:
    """A yt-dlp progress hook that stops a download once it has written more than `cap` bytes."""

    def stop_past_cap(status: Mapping[str, Any]) -> None:
        read = status.get("downloaded_bytes")
        if status.get("status") == "downloading" and isinstance(read, int) and read > cap:
            partial = status.get("tmpfilename")
            raise StreamCapExceeded(read, cap, partial if isinstance(partial, str) else None)

    return stop_past_cap
