"""Caption tracks are downloaded by yt-dlp (to disk), then read: one past the cap is an error, never read
into memory, whether the server announces its size (yt-dlp's max_filesize refuses it unread) or not (our
progress hook stops it once past the cap, and its partial file is removed)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tasks.youtube.client as client_module
import tasks.youtube.subtitles as subtitles_module
from tasks.demo.site import DemoSite
from tasks.youtube.access import YoutubeAccess
from tasks.youtube.client import VideoError, YoutubeClient
from tasks.youtube.errors import ErrorKind
from tasks.youtube.politeness import Politeness, PolitenessSettings
from tests.loopback import CountingHandler, counting

CAP = 1_000_000
LINE = b"00:00:00.000 --> 00:00:01.000\nsome words of a caption line\n\n" * 1000


class _BigTrack(CountingHandler):
    """`/declared.vtt` announces 100 times the cap, `/unsized.vtt` sends as much with no length."""

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "text/vtt")
        if self.path.startswith("/declared.vtt"):
            self.send_header("Content-Length", str(100 * CAP))
        self.end_headers()
        self.stream([b"WEBVTT\n\n", *(LINE for _ in range(100 * CAP // len(LINE)))])


@pytest.fixture()
def big_tracks(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(subtitles_module, "MAX_VTT_BYTES", CAP)
    monkeypatch.setattr(client_module, "MAX_VTT_BYTES", CAP)
    with counting(_BigTrack) as url:
        yield url


def _client(site: DemoSite) -> YoutubeClient:
    settings = PolitenessSettings(requests_per_s=0, jitter_s=0)
    access = YoutubeAccess(site_url=site.url, politeness=settings, retries=0, extractor_retries=0)
    return YoutubeClient(access, politeness=Politeness(settings))


def _info_with_track_at(info: dict[str, Any], url: str) -> dict[str, Any]:
    """A demo video's probed info whose manual `en` track is served from `url`."""
    info = copy.deepcopy(info)
    for fmt in info["subtitles"]["en"]:
        fmt["url"] = url
    return info


@pytest.mark.parametrize(
    ("path", "says"), [("declared.vtt", "larger than max-filesize"), ("unsized.vtt", "stopped after")]
)
def test_a_caption_track_past_the_cap_is_an_error_and_not_read(
    demo_site: DemoSite, big_tracks: str, path: str, says: str
) -> None:
    vid = next(v.id for v in demo_site.world.usable if v.captions in ("manual", "manual+auto"))
    with _client(demo_site) as client:
        info = _info_with_track_at(client.probe(client.video_url(vid)), f"{big_tracks}/{path}")
        with pytest.raises(VideoError) as caught:
            client.captions(info, "en", "manual")
        left = sorted(p.name for p in Path(str(client._captions_dir)).iterdir())
    message = str(caught.value)
    assert caught.value.kind is ErrorKind.TRANSIENT and vid in message, message
    assert says in message and "the 1 MB cap for a caption track" in message, message
    assert left == []  # no partial track kept on disk
    # Refused on its Content-Length (the body was not taken), or stopped while streaming once past the
    # cap: the server got out the cap and the sockets' buffers (a few MB on loopback), not its 100 MB.
    assert _BigTrack.sent < 30 * CAP, _BigTrack.sent


def test_the_caption_cap_is_yt_dlp_max_filesize() -> None:
    assert (
        subtitles_module.subtitle_params("/tmp/x")["max_filesize"]
        == subtitles_module.MAX_VTT_BYTES
        == 50_000_000
    )
