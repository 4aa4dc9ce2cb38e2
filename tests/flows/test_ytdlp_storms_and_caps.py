"""Stages against the demo site's trouble switches: 429 storms on caption (.vtt) and media (.mp4) requests
lose no video, the stage summary and artifact count what yt-dlp said; media caps make failed rows."""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc
import pytest

from flows.extract_features import extract_features
from flows.fetch_captions import fetch_captions
from storage.layout import DataRoot
from storage.shards import read_marker, read_shard
from tasks.captions.config import FetchCaptionsConfig
from tasks.demo.site import DemoSite
from tasks.demo.troubles import Troubles
from tasks.features.config import ExtractFeaturesConfig
from tasks.youtube.access import YoutubeAccess
from tasks.youtube.politeness import PolitenessSettings
from tests.flows.test_fetch_captions import pick, seed_root

pytestmark = pytest.mark.slow

# The cheapest real extraction: 2D only, at the smallest input size.
CFG = ExtractFeaturesConfig(
    models=("resnet152",), short_side_2d=32, batch_2d=8, decode_workers=1, random_weights=True
)
STORM = 6


def access(site: DemoSite) -> YoutubeAccess:
    polite = PolitenessSettings(
        requests_per_s=0, jitter_s=0, backoff_base_s=0.01, backoff_max_s=0.05, max_backoffs=STORM + 2
    )
    return YoutubeAccess(site_url=site.url, politeness=polite, retries=0, extractor_retries=0)


def paths_since(site: DemoSite, before: int) -> set[str]:
    return {r.split()[1].split("?")[0] for r in list(site.requests)[before:]}


def ok_videos(root: DataRoot, dataset: str, keep_only: bool = False) -> set[str]:
    table = read_shard(root, dataset, 0)
    assert table is not None
    if keep_only:
        table = table.filter(pc.field("keep"))
    return set(table.filter(pc.equal(table.column("status"), "ok")).column("video_id").to_pylist())


def test_429_storms_on_vtt_and_mp4_lose_no_video(site: DemoSite, tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path / "data")
    ids = pick(site.world)[:5]
    seed_root(root, site, ids)  # probed now: the kept info files are fresh, so no page is asked again

    site.set_troubles(Troubles(too_many_requests=STORM, retry_after_s=0))
    before = len(site.requests)
    try:
        captions = fetch_captions(FetchCaptionsConfig(), root.url, access(site))
    finally:
        site.set_troubles()
    assert paths_since(site, before) == {"/api/timedtext"}  # the storm fell on caption files only
    assert captions["errors"] == 0 and ok_videos(root, "captions") == set(ids)
    assert captions["ytdlp"] == {"error:rate_limited": STORM}
    kept = ok_videos(root, "captions", keep_only=True)
    assert kept

    site.set_troubles(Troubles(too_many_requests=STORM, retry_after_s=0))
    before = len(site.requests)
    try:
        features = extract_features(CFG, root.url, access(site))
    finally:
        site.set_troubles()
    assert paths_since(site, before) == {"/videoplayback"}  # ... and here on media files only
    assert features["errors"] == 0 and ok_videos(root, "frame_features") == kept  # 0 videos lost
    assert features["ytdlp"] == {"error:rate_limited": STORM}


def test_summary_artifact_shows_what_yt_dlp_said_with_advice(site: DemoSite, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client

    root = DataRoot.from_any(tmp_path / "data")
    seed_root(root, site, pick(site.world)[:2])
    site.set_troubles(Troubles(too_many_requests=2, retry_after_s=0))
    try:
        fetch_captions(FetchCaptionsConfig(), root.url, access(site))
    finally:
        site.set_troubles()
    with get_client(sync_client=True) as client:
        artifact = client.read_latest_artifacts()
    summary = next(a for a in artifact if a.key == "fetch-captions-summary")
    assert "What yt-dlp said" in str(summary.data)
    assert "| error:rate_limited | 2 | Too many requests: slow down" in str(summary.data)


def captioned_root(site: DemoSite, path: Path) -> tuple[DataRoot, set[str]]:
    root = DataRoot.from_any(path)
    seed_root(root, site, pick(site.world)[:3])
    fetch_captions(FetchCaptionsConfig(), root.url, access(site))
    return root, ok_videos(root, "captions", keep_only=True)


def test_media_caps_make_failed_rows_with_drop_reasons(site: DemoSite, tmp_path: Path) -> None:
    root, kept = captioned_root(site, tmp_path / "data")
    before = len(site.requests)
    small = CFG.model_copy(update={"max_download_mb": 0.01})
    summary = extract_features(small, root.url, access(site))
    assert "/videoplayback" not in paths_since(site, before)  # refused before any media request
    table = read_shard(root, "frame_features", 0)
    assert table is not None and set(table.column("status").to_pylist()) == {"failed"}
    assert all(e.startswith("too_large: ") for e in table.column("error").to_pylist())
    assert summary["drops"] == {"too_large": len(kept)} and summary["errors"] == 0
    assert read_marker(root, "frame_features", 0).drops == {"too_large": len(kept)}  # type: ignore[union-attr]

    # The caps are run settings (outside the data hash): changing one redoes no finished shard.
    short = CFG.model_copy(update={"max_media_duration_s": 1.0})
    assert extract_features(short, root.url, access(site))["shards_cached"] == 1
    root, kept = captioned_root(site, tmp_path / "data2")
    summary = extract_features(short, root.url, access(site))
    table = read_shard(root, "frame_features", 0)
    assert table is not None and set(table.column("status").to_pylist()) == {"failed"}
    assert all(e.startswith("too_long: ") for e in table.column("error").to_pylist())
    assert summary["drops"] == {"too_long": len(kept)}
    assert not list((tmp_path / "data2" / "_work" / "videos").glob("*.mp4"))  # nothing kept to decode
