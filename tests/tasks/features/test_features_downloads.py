"""The features stage's download of one video against the demo site: kept info reused, or replaced."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from storage.layout import DataRoot
from tasks.demo.site import DemoSite
from tasks.features.downloads import _download
from tasks.search.info_store import save_info
from tasks.youtube.access import YoutubeAccess
from tasks.youtube.client import YoutubeClient
from tasks.youtube.politeness import Politeness, PolitenessSettings
from tasks.youtube.video_download import DownloadSettings


@pytest.mark.parametrize("size", [math.inf, math.nan])
def test_kept_info_with_a_size_that_is_no_number_is_replaced_by_a_fresh_extraction(
    demo_site: DemoSite, tmp_path: Path, size: float
) -> None:
    """A kept info file with `Infinity` or `NaN` (an older run's, before the probe checked for them, or a
    crafted root's) made yt-dlp itself raise OverflowError / ValueError (its format table), and the shard
    stop; it is now passed over like a stale one."""
    demo_site.set_troubles()
    vid = demo_site.world.usable[0].id
    settings = PolitenessSettings(requests_per_s=0, jitter_s=0)
    access = YoutubeAccess(site_url=demo_site.url, politeness=settings, retries=0, extractor_retries=0)
    root = DataRoot.from_any(tmp_path / "data")
    with YoutubeClient(access, politeness=Politeness(settings)) as client:
        info = client.probe(client.video_url(vid))
        for fmt in info["formats"]:
            fmt["filesize"] = size
        save_info(root, vid, json.loads(json.dumps(info)))
        before = len(demo_site.requests)
        path = _download(root, client, vid, client.video_url(vid), DownloadSettings(tmp_path / "videos", 0.0))
    assert path.stat().st_size == demo_site.world.video(vid).path.stat().st_size  # type: ignore[union-attr]
    assert [r.split("?")[0] for r in list(demo_site.requests)[before:]] == [
        "GET /watch",
        "GET /videoplayback",
    ]
