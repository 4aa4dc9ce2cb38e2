"""A crafted or damaged data root whose `videos` shard holds ids that are no YouTube id (`../x`, `-x`): each
such video is an error row of the features, audio and captions shards, the other videos are done, the shards
finish, and no such id ever becomes a path (nothing is written outside the root) or a yt-dlp argument."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from flows.extract_audio import extract_audio
from flows.extract_features import extract_features
from flows.fetch_captions import fetch_captions
from storage.layout import DataRoot
from storage.schemas import get_schema
from storage.shards import read_marker, read_shard, write_shard
from tasks.audio.config import ExtractAudioConfig
from tasks.captions.config import FetchCaptionsConfig
from tasks.demo.site import DemoSite
from tasks.features.config import ExtractFeaturesConfig
from tests.flows.downloads import root_with_downloaded_videos
from tests.flows.test_fetch_captions import access_for, pick, seed_root

GOOD = "goodvideo01"
BAD_IDS = ["../x", "-x", "../../../../escaped", "goodvideo01/../../y"]
CFG = ExtractFeaturesConfig(
    models=("resnet152",), short_side_2d=32, batch_2d=4, decode_workers=1, random_weights=True
)


def _add_videos(root: DataRoot, rows: list[dict[str, object]]) -> None:
    """Rewrite `videos` shard 0 with `rows` added (kept, probed fine), as a hand-edited root would hold."""
    table = read_shard(root, "videos", 0)
    assert table is not None
    schema = get_schema("videos").schema
    added = pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in rows], schema=schema)
    both = pa.concat_tables([table, added])
    write_shard(root, "videos", 0, both, config_hash="v-hash-2", code_version="t", rows_in=both.num_rows)


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def _statuses(table: pa.Table | None) -> dict[str, tuple[str, str | None]]:
    assert table is not None
    rows = table.select(["video_id", "status", "error"]).to_pylist()
    return {r["video_id"]: (r["status"], r["error"]) for r in rows}


def test_bad_ids_are_error_rows_of_the_features_and_audio_shards(tmp_path: Path) -> None:
    root = root_with_downloaded_videos(tmp_path, {GOOD: 2})
    _add_videos(root, [{"video_id": v, "keep": True, "status": "ok", "crawl_id": "c0"} for v in BAD_IDS])
    outside = _files(tmp_path) - _files(tmp_path / "data")

    summary = extract_features(CFG, root.url)
    assert summary["shards"] == 1 and summary["errors"] == len(BAD_IDS)
    status = _statuses(read_shard(root, "frame_features", 0))
    assert status[GOOD] == ("ok", None)
    for vid in BAD_IDS:
        assert status[vid][0] == "error" and f"not a video id: {vid!r}" in str(status[vid][1])
    marker = read_marker(root, "frame_features", 0)
    assert marker is not None and marker.rows_in == 1 + len(BAD_IDS)

    audio = extract_audio(ExtractAudioConfig(), root.url)
    assert audio["shards"] == 1 and audio["errors"] == len(BAD_IDS)
    status = _statuses(read_shard(root, "audio_features", 0))
    assert status[GOOD][0] == "no_audio"  # done: the testsrc clip has no audio stream
    for vid in BAD_IDS:
        assert status[vid][0] == "error" and f"not a video id: {vid!r}" in str(status[vid][1])

    # No id became a path: nothing new outside the data root, no file named after a piece of a bad id.
    assert _files(tmp_path) - _files(tmp_path / "data") == outside
    assert not [p for p in _files(tmp_path) if p.stem.split(".")[0] in ("x", "escaped", "y")]


def test_a_bad_id_is_a_failed_captions_row_and_the_others_are_fetched(
    demo_site: DemoSite, tmp_path: Path
) -> None:
    root = DataRoot.from_any(tmp_path / "data")
    ids = pick(demo_site.world)[:2]
    seed_root(root, demo_site, ids)
    task = demo_site.world.video(ids[0]).task  # type: ignore[union-attr]
    bad = [
        {"video_id": v, "task_id": task, "keep": True, "status": "ok", "crawl_id": "c0",
         "caption_lang": "en", "caption_kind": "auto"}
        for v in BAD_IDS
    ]  # fmt: skip
    _add_videos(root, bad)
    summary = fetch_captions(FetchCaptionsConfig(), data_root=root.url, access=access_for(demo_site))
    assert summary["shards"] == 1
    status = _statuses(read_shard(root, "captions", 0))
    assert all(status[vid][0] == "ok" for vid in ids)
    for vid in BAD_IDS:
        assert status[vid][0] == "failed" and f"not a video id: {vid!r}" in str(status[vid][1])
    assert _files(tmp_path) == _files(tmp_path / "data")
    assert not [p for p in _files(tmp_path) if p.stem.split(".")[0] in ("x", "escaped", "y")]
