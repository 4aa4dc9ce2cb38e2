"""A watch page answering HTTP 503 (trouble `server_error`): an error row retried next run, no shard crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.search_videos import search_videos
from tasks.demo.site import DemoSite
from tasks.demo.troubles import Troubles
from tests.flows.test_search_videos import access, config, hits, make_root, rows

pytestmark = pytest.mark.slow


def test_503_watch_page_is_an_error_row_retried_next_run(site: DemoSite, tmp_path: Path) -> None:
    sick = site.world.usable[0].id
    own_failures = {v.id for v in site.world.videos if v.status != "ok"}  # the world's private/removed
    site.set_troubles(Troubles(server_error={sick}))
    root = make_root(tmp_path, site)
    # retries=0: yt-dlp does not retry a page fetch anyway; this keeps the count of /watch hits exact.
    cfg, once = config(), access(site, retries=0, extractor_retries=0)
    first = search_videos(cfg, root.url, once)  # returns: the 503 did not crash its shard
    by_id = {r["video_id"]: r for r in rows(root, "videos")}
    row = by_id[sick]
    assert (row["status"], row["keep"], row["drop_reason"], row["info_path"]) == ("error", False, None, None)
    assert "HTTP Error 503: Service Unavailable" in row["error"]
    assert first["errors"] == 1
    for vid, other in by_id.items():
        if vid != sick:
            assert other["status"] == ("failed" if vid in own_failures else "ok"), other

    site.set_troubles()
    watch_before = hits(site, "/watch")
    second = search_videos(cfg, root.url, once)
    assert hits(site, "/watch") - watch_before == 1  # only the errored video is probed again
    again = {r["video_id"]: r for r in rows(root, "videos")}
    assert again[sick]["status"] == "ok" and again[sick]["keep"] and again[sick]["error"] is None
    assert second["errors"] == 0
    assert {k: v for k, v in again.items() if k != sick} == {k: v for k, v in by_id.items() if k != sick}
