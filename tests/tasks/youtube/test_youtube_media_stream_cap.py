"""A media body whose size nobody tells (no Content-Length, no filesize in the info) is stopped once past
features.max_download_mb while it streams, and its partial file removed: before, yt-dlp wrote it whole."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasks.demo.site import DemoSite
from tasks.youtube.access import YoutubeAccess
from tasks.youtube.client import MediaCapExceeded, YoutubeClient
from tasks.youtube.politeness import Politeness, PolitenessSettings
from tasks.youtube.video_download import TOO_LARGE, DownloadSettings
from tests.loopback import CountingHandler, counting

CAP = 1_000_000
BLOCK = bytes(64 * 1024)


class _Unsized(CountingHandler):
    """Any path: 100 times the cap of media bytes with no Content-Length."""

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.end_headers()
        self.stream(BLOCK for _ in range(100 * CAP // len(BLOCK)))


@pytest.fixture()
def unsized_media() -> Iterator[str]:
    with counting(_Unsized) as url:
        yield url


def _unsized_formats(info: dict[str, Any], url: str) -> dict[str, Any]:
    """A probed info whose every format streams from `url` and tells no size."""
    info = copy.deepcopy(info)
    for i, fmt in enumerate(info["formats"]):
        fmt["url"] = f"{url}/media{i}"
        fmt.pop("filesize", None)
        fmt.pop("filesize_approx", None)
    return info


def test_media_of_untold_size_is_stopped_at_the_cap_and_its_part_file_removed(
    demo_site: DemoSite, unsized_media: str, tmp_path: Path
) -> None:
    vid = demo_site.world.usable[0].id
    settings = PolitenessSettings(requests_per_s=0, jitter_s=0)
    access = YoutubeAccess(site_url=demo_site.url, politeness=settings, retries=0, extractor_retries=0)
    out = tmp_path / "videos"
    out.mkdir()
    with YoutubeClient(access, politeness=Politeness(settings)) as client:
        info = _unsized_formats(client.probe(client.video_url(vid)), unsized_media)
        with pytest.raises(MediaCapExceeded) as caught:
            client.video(vid, client.video_url(vid), DownloadSettings(out, 0.0, max_bytes=CAP), info=info)
        counts = dict(client.errors)
    assert caught.value.reason == TOO_LARGE and "cap 1 MB" in str(caught.value), str(caught.value)
    assert counts.get(f"error:{TOO_LARGE}") == 1
    assert sorted(p.name for p in out.iterdir()) == []  # no .part left for a resume to start from
    # The cap and the sockets' buffers got out (a few MB on loopback), not the server's 100 MB.
    assert _Unsized.sent < 30 * CAP, _Unsized.sent
