"""A host without ffmpeg (the features stage decodes through PyAV there) cannot merge YouTube's split video
and audio formats: the download takes one file instead. Before, yt-dlp stopped every such video with "You
have requested merging of multiple formats but ffmpeg is not installed", a muxed format on offer or not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.loopback import files_handler, serving

REPO = Path(__file__).resolve().parents[3]

# The bytes each format's URL serves: what landed on disk tells which format was downloaded.
BODIES = {"133": b"video only " * 100, "599": b"audio only " * 50, "18": b"video and audio " * 200}
VIDEO_ID = "abcdefghijk"


@pytest.fixture()
def media_url() -> Iterator[str]:
    with serving(files_handler(BODIES)) as url:
        yield url


def _info(url: str, muxed: bool) -> dict[str, Any]:
    """A kept info with YouTube's shapes: 240p H.264 video alone, HE-AAC audio alone, and (`muxed`) the
    360p H.264 + AAC format 18."""

    def fmt(fid: str, height: int | None, vcodec: str, acodec: str, ext: str) -> dict[str, Any]:
        width = height and height * 16 // 9
        return {"format_id": fid, "url": f"{url}/{fid}", "ext": ext, "width": width, "height": height,
                "vcodec": vcodec, "acodec": acodec, "protocol": "http", "filesize": len(BODIES[fid])}  # fmt: skip

    formats = [fmt("133", 240, "avc1.4d4015", "none", "mp4"), fmt("599", None, "none", "mp4a.40.5", "m4a")]
    if muxed:
        formats.append(fmt("18", 360, "avc1.42001E", "mp4a.40.2", "mp4"))
    return {"id": VIDEO_ID, "title": "t", "formats": formats, "extractor": "generic",
            "extractor_key": "Generic", "webpage_url": f"{url}/watch"}  # fmt: skip


# The download, in a process of its own whose PATH has no ffmpeg: yt-dlp remembers the ffmpeg it found
# once for the life of a process, as a host without one never has it.
DOWNLOAD = """
import json, sys
from pathlib import Path
from tasks.youtube.access import YoutubeAccess
from tasks.youtube.client import YoutubeClient
from tasks.youtube.politeness import Politeness, PolitenessSettings
from tasks.youtube.video_download import DownloadSettings

info, out = json.loads(sys.argv[1]), Path(sys.argv[2])
settings = PolitenessSettings(requests_per_s=0, jitter_s=0)
access = YoutubeAccess(politeness=settings, retries=0, extractor_retries=0)
with YoutubeClient(access, politeness=Politeness(settings)) as client:
    print(client.video(info["id"], info["webpage_url"], DownloadSettings(out, min_free_gb=0), info))
"""


@pytest.mark.parametrize(("muxed", "expected"), [(True, "18"), (False, "133")])
def test_without_ffmpeg_one_file_is_downloaded(
    media_url: str, tmp_path: Path, muxed: bool, expected: str
) -> None:
    """The muxed format when there is one (its own audio), else the video alone (the audio stage fetches
    the audio later)."""
    empty = tmp_path / "no-ffmpeg"
    empty.mkdir()
    out = tmp_path / "videos"
    env = {**os.environ, "PATH": str(empty), "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-c", DOWNLOAD, json.dumps(_info(media_url, muxed)), str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    path = Path(done.stdout.strip())
    assert path == out / f"{VIDEO_ID}.mp4"
    assert path.read_bytes() == BODIES[expected]
    assert [p.name for p in out.iterdir()] == [path.name]  # no unmerged pieces left beside it
