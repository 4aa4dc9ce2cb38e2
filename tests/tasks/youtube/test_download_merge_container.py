"""Split formats merged by yt-dlp and real ffmpeg keep the audio's start delay: VP9 + AAC (which yt-dlp merges
into Matroska) goes into mp4. Before, Matroska dropped AAC's edit list: ffmpeg shifted the file 21 ms (the
video stream started at 21 ms, the AAC priming at 0), so frame and audio rows both sat 21 ms late."""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tasks.audio.decode import decode_mono
from tasks.youtube.access import YoutubeAccess
from tasks.youtube.client import YoutubeClient
from tasks.youtube.politeness import Politeness, PolitenessSettings
from tasks.youtube.video_download import DownloadSettings, merge_container
from tests.loopback import files_handler, serving

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")

SR = 16_000
# A 1 kHz burst from 1.0 to 1.6 s, silence around it; 4 s at 48 kHz (AAC primes 1024 samples: 21.3 ms).
BURST = "aevalsrc=if(between(t\\,1\\,1.6)\\,0.5*sin(2*PI*1000*t)\\,0):s=48000:d=4"


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-threads", "1", *args], check=True)


# What each format id serves, filled by the media_url fixture.
FILES: dict[str, bytes] = {}


@pytest.fixture(scope="module")
def media_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """YouTube's split pieces as real files: VP9 video alone (webm), AAC and Opus audio alone."""
    out = tmp_path_factory.mktemp("pieces")
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=400x224:rate=25:duration=4", "-c:v", "libvpx-vp9",
            "-deadline", "realtime", "-cpu-used", "8", str(out / "vp9.webm"))  # fmt: skip
    _ffmpeg("-f", "lavfi", "-i", BURST, "-c:a", "aac", str(out / "aac.m4a"))
    _ffmpeg("-f", "lavfi", "-i", BURST, "-c:a", "libopus", str(out / "opus.webm"))
    FILES.update({name: (out / f).read_bytes() for name, f in
                  (("248", "vp9.webm"), ("140", "aac.m4a"), ("251", "opus.webm"))})  # fmt: skip
    with serving(files_handler(FILES)) as url:
        yield url


def _fmt(url: str, fid: str, ext: str, vcodec: str, acodec: str) -> dict[str, Any]:
    video = vcodec != "none"
    return {"format_id": fid, "url": f"{url}/{fid}", "ext": ext, "vcodec": vcodec, "acodec": acodec,
            "width": 400 if video else None, "height": 224 if video else None, "protocol": "http",
            "filesize": len(FILES[fid])}  # fmt: skip


def _info(url: str, video_id: str, audio: dict[str, Any]) -> dict[str, Any]:
    formats = [_fmt(url, "248", "webm", "vp09.00.21.08", "none"), audio]
    return {"id": video_id, "title": "t", "formats": formats, "extractor": "generic",
            "extractor_key": "Generic", "webpage_url": f"{url}/watch"}  # fmt: skip


def _download_three(media_url: str, tmp_path: Path) -> list[Path]:
    """Two VP9 + AAC videos, then one VP9 + Opus, downloaded in turn by one client (one shared downloader)."""
    settings = PolitenessSettings(requests_per_s=0, jitter_s=0)
    access = YoutubeAccess(politeness=settings, retries=0, extractor_retries=0)
    downloads = DownloadSettings(tmp_path / "videos", min_free_gb=0)
    aac = _fmt(media_url, "140", "m4a", "none", "mp4a.40.2")
    opus = _fmt(media_url, "251", "webm", "none", "opus")
    infos = [_info(media_url, "vp9aac00001", aac), _info(media_url, "vp9aac00002", aac),
             _info(media_url, "vp9opus0000", opus)]  # fmt: skip
    with YoutubeClient(access, politeness=Politeness(settings)) as client:
        return [client.video(info["id"], info["webpage_url"], downloads, info) for info in infos]


def _stream_starts(path: Path) -> dict[str, float]:
    entries = "stream=codec_type,start_time"
    cmd = ["ffprobe", "-v", "error", "-show_entries", entries, "-of", "csv=p=0", str(path)]
    lines = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
    return {kind: float(start) for kind, start in (line.split(",") for line in lines)}


def test_vp9_and_aac_merge_into_mp4_on_time(media_url: str, tmp_path: Path) -> None:
    """Two VP9 + AAC videos into mp4: video and audio both start at 0, the burst at 1.000 s. Then VP9 + Opus
    with the same client: yt-dlp's own webm (the shared downloader keeps no earlier video's pick), whose
    Opus pre-roll WebM keeps (-7 ms), the burst at 1.000 s too."""
    paths = _download_three(media_url, tmp_path)
    assert [p.name for p in paths] == ["vp9aac00001.mp4", "vp9aac00002.mp4", "vp9opus0000.webm"]
    assert _stream_starts(paths[1]) == {"video": 0.0, "audio": 0.0}
    for path in paths:
        wave = decode_mono(str(path), SR, timeout_s=60.0)
        onset = float(np.flatnonzero(np.abs(wave) > 0.05)[0]) / SR
        assert abs(onset - 1.0) < 0.002, path.name


def test_an_ffmpeg_that_refuses_vp9_in_mp4_merges_into_matroska_as_before(
    media_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """FFmpeg 3.x's mp4 muxer refuses VP9 without `-strict experimental`: since VP9 + AAC went into mp4 every
    such download failed ('Conversion failed!'). Now the merge is tried once on small files and, refused, the
    download goes into yt-dlp's Matroska, 21 ms late as before, with a warning that says so."""
    from tests.old_ffmpeg import ffmpeg3_on_path

    monkeypatch.setenv("PATH", ffmpeg3_on_path(tmp_path / "old-ffmpeg"))
    with caplog.at_level(logging.WARNING):
        paths = _download_three(media_url, tmp_path)
    assert [p.name for p in paths] == ["vp9aac00001.mkv", "vp9aac00002.mkv", "vp9opus0000.webm"]
    warnings = [r.getMessage() for r in caplog.records if "refuses VP9 + AAC in mp4" in r.getMessage()]
    assert len(warnings) == 1  # asked once, not once a video
    assert "21 ms late" in warnings[0] and "howto doctor" in warnings[0]
    assert "VP9 in MP4 support is experimental" in warnings[0]
    wave = decode_mono(str(paths[0]), SR, timeout_s=60.0)
    assert float(np.flatnonzero(np.abs(wave) > 0.05)[0]) / SR > 1.01  # Matroska's shift, as before 533b15d


@pytest.mark.parametrize(
    ("ext", "codecs", "expected"),
    [
        ("mkv", ("vp09.00.21.08", "mp4a.40.2"), "mp4"),
        ("mkv", ("av01.0.05M.08", "mp4a.40.5"), "mp4"),
        ("mkv", ("avc1.4d401e", "opus"), None),  # Matroska keeps Opus's delay: yt-dlp's pick stays
        ("mkv", ("vp8", "mp4a.40.2"), None),  # mp4 cannot hold VP8: Matroska or nothing
        ("webm", ("vp9", "opus"), None),
        ("mp4", ("avc1.4d401e", "mp4a.40.2"), None),
    ],
)
def test_merge_container(ext: str, codecs: tuple[str, str], expected: str | None) -> None:
    chosen = {"ext": ext, "requested_formats": [{"vcodec": codecs[0], "acodec": "none"},
                                                 {"vcodec": "none", "acodec": codecs[1]}]}  # fmt: skip
    assert merge_container(chosen) == expected
    assert merge_container({"ext": "mkv", "format_id": "18", "vcodec": "vp9", "acodec": "mp4a.40.2"}) is None
