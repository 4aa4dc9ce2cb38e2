"""The dataset card and page (tasks/report/card.py) on a small real data root: what a reader sees."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from storage.layout import DataRoot
from storage.schemas import SCHEMAS
from storage.shards import write_shard
from tasks.report.card import write_report
from tests.storage.catalog_data import build_root


def _features(video_id: str, seconds: int) -> pa.Table:
    rows = [
        {"video_id": video_id, "model": "resnet152", "idx": i, "t_start_ms": i * 1000, "t_end_ms": i * 1000 + 1000,
         "vector": [0.5, 0.5], "random_weights": False, "status": "ok"}
        for i in range(seconds)
    ]  # fmt: skip
    return pa.Table.from_pylist(rows, schema=SCHEMAS["frame_features"].schema)


def test_a_few_seconds_or_minutes_are_never_shown_as_zero_hours(tmp_path: Path) -> None:
    """The card said "0.0 h of video covered" for two minutes of features (one decimal) and "0.00" hours
    for 5.4 s of clips (two decimals), though neither set is empty; stats said 0.033 and 0.002."""
    root: DataRoot = build_root(tmp_path)  # 6 clips of 0.9 s
    write_shard(
        root, "frame_features", 0, _features("0" * 11, 120), config_hash="h", code_version="x", rows_in=1
    )
    report = write_report(root, tmp_path / "report")
    card = Path(report["card"]).read_text()
    page = Path(report["page"]).read_text()
    assert "| hours (sum of clip spans) | 0.0015 |" in card
    assert "0.03 h of video covered." in card and "0.03 h of video covered." in page


def test_a_root_without_clips_shows_no_mean_or_median_rather_than_zero(tmp_path: Path) -> None:
    """Every video's captions dropped: the card said "0.0 / 0.0" clips per video and "0.00 / 0.00" s per clip,
    read as clips of zero seconds; the averages of no clips are not there to show."""
    root = DataRoot.from_any(tmp_path / "data")
    captions = [{"video_id": "1" * 11, "n_words": 3, "keep": False, "drop_reason": "too_few_words", "status": "ok",
                 "crawl_id": "c0"}]  # fmt: skip
    table = pa.Table.from_pylist(captions, schema=SCHEMAS["captions"].schema)
    write_shard(root, "captions", 0, table, config_hash="h", code_version="x", rows_in=1)
    report = write_report(root, tmp_path / "report")
    card = Path(report["card"]).read_text()
    assert "| clips per video (mean / median) | - |" in card
    assert "| clip duration, s (mean / median) | - |" in card
    assert "| words per clip (mean / median) | - |" in card
    assert report["means"] == {"clips_per_video": None, "clip_duration_s": None, "words_per_clip": None}
