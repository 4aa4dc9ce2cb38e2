"""The audio_features view and `stats` audio coverage: videos with a track, silent, without, failed; hours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from storage.catalog import query, stats
from storage.layout import DataRoot
from storage.shards import write_shard
from tasks.audio.extract import AudioResult
from tasks.audio.rows import audio_table


def test_audio_view_and_coverage(tmp_path: Path) -> None:
    root = DataRoot.from_any(str(tmp_path))
    vec = np.ones((2, 4), np.float32) / 2
    spans = np.array([0, 1000]), np.array([1000, 1800])
    results = [
        AudioResult("aaaaaaaaaaa", "ok", None, *spans, vec),
        AudioResult("bbbbbbbbbbb", "silent", "peak -90 dBFS < -60", *spans, vec),
        AudioResult("ccccccccccc", "no_audio", "no audio stream in the file"),
        AudioResult("ddddddddddd", "failed", "corrupt_audio: Invalid data"),
    ]
    table = pa.concat_tables(audio_table(r, "logmel_stats", False) for r in results)
    write_shard(root, "audio_features", 0, table, config_hash="x", code_version="t", rows_in=4)
    assert query("SELECT count(*) FROM audio_features WHERE idx >= 0", root).rows == [(4,)]
    audio = stats(root)["audio"]
    assert audio == {
        "videos_with_audio": 2,
        "videos_silent": 1,
        "videos_no_audio": 1,
        "videos_failed": 1,
        "hours": round(2 * 1.8 / 3600, 3),
    }
