"""The features stage downloads through the one yt-dlp call loop: a bot check or 429s past the breaker
stop the stage (no error row per video while it keeps asking), a few 429s are waited out."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from flows.extract_features import extract_features
from storage.layout import DataRoot
from storage.schemas import get_schema
from storage.shards import read_marker, read_shard, write_shard
from tasks.demo.site import DemoSite
from tasks.demo.troubles import Troubles
from tasks.features.config import ExtractFeaturesConfig
from tasks.youtube.access import YoutubeAccess
from tasks.youtube.errors import ErrorKind, StageHalted
from tasks.youtube.politeness import PolitenessSettings

pytestmark = pytest.mark.slow

# The cheapest real extraction: 2D only, at the smallest input size.
CFG = ExtractFeaturesConfig(
    models=("resnet152",), short_side_2d=32, batch_2d=8, decode_workers=1, random_weights=True
)


def access(site: DemoSite, max_backoffs: int) -> YoutubeAccess:
    # Each test its own settings, so its own process-wide breaker (a halted one stays over its limit).
    polite = PolitenessSettings(
        requests_per_s=0, jitter_s=0, backoff_base_s=0.01, backoff_max_s=0.02, max_backoffs=max_backoffs
    )
    return YoutubeAccess(site_url=site.url, politeness=polite, retries=0, extractor_retries=0)


def seed(tmp_path: Path, site: DemoSite, n: int = 2) -> tuple[DataRoot, list[str]]:
    """A `videos` shard 0 keeping `n` playable demo videos (what the search stage would write)."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed (setup installs it)")
    root = DataRoot.from_any(tmp_path / "data")
    ids = [v.id for v in site.world.usable[:n]]
    schema = get_schema("videos").schema
    rows = [
        {**dict.fromkeys(schema.names), "video_id": v, "url": f"{site.url}/watch?v={v}", "keep": True}
        | {"status": "ok", "crawl_id": "c0"}
        for v in ids
    ]
    write_shard(
        root,
        "videos",
        0,
        pa.Table.from_pylist(rows, schema=schema),
        config_hash="v",
        code_version="t",
        rows_in=n,
    )
    return root, ids


def watch_hits(site: DemoSite, before: int) -> int:
    return sum(1 for line in list(site.requests)[before:] if " /watch" in line)


def test_bot_check_stops_the_stage_then_a_rerun_extracts_every_video(site: DemoSite, tmp_path: Path) -> None:
    root, ids = seed(tmp_path, site)
    site.set_troubles(Troubles(bot_check=1))
    before = len(site.requests)
    with pytest.raises(StageHalted) as info:
        extract_features(CFG, root.url, access(site, max_backoffs=3))
    assert info.value.kind is ErrorKind.BOT_CHECK and "--cookies" in str(info.value)
    assert watch_hits(site, before) == 1  # the first video's page only: nothing more was asked
    assert read_marker(root, "frame_features", 0) is None  # no shard of error rows

    site.set_troubles()
    summary = extract_features(CFG, root.url, access(site, max_backoffs=3))
    assert summary["errors"] == 0
    table = read_shard(root, "frame_features", 0)
    assert table is not None and set(table.column("video_id").to_pylist()) == set(ids)
    assert set(table.column("status").to_pylist()) == {"ok"}


def test_429s_past_the_breaker_stop_the_stage_and_a_few_are_waited_out(
    site: DemoSite, tmp_path: Path
) -> None:
    root, ids = seed(tmp_path, site)
    site.set_troubles(Troubles(too_many_requests=100, retry_after_s=0))
    before = len(site.requests)
    with pytest.raises(StageHalted) as info:
        extract_features(CFG, root.url, access(site, max_backoffs=2))
    assert info.value.kind is ErrorKind.RATE_LIMITED
    assert len(site.requests) - before == 3  # one request and two back-offs, then it stopped asking
    assert read_marker(root, "frame_features", 0) is None

    site.set_troubles(Troubles(too_many_requests=2, retry_after_s=0))
    summary = extract_features(CFG, root.url, access(site, max_backoffs=4))
    table = read_shard(root, "frame_features", 0)
    assert summary["errors"] == 0 and table is not None
    assert set(table.column("video_id").to_pylist()) == set(ids)
    assert set(table.column("status").to_pylist()) == {"ok"}
