"""Per-second audio_features rows for a synthetic root (tasks/synthetic/training.py): each second sounds
like the step its clip shows (a step prototype plus noise), so FAC has audio that agrees with video and
text. One video in `silent_every` gets no audio rows at all (a no_audio status row), as real data has."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from storage.layout import DataRoot
from storage.shards import list_markers, read_shard, write_shard
from tasks.audio.extract import AudioResult
from tasks.audio.rows import audio_table


def write_synthetic_audio(
    root: DataRoot,
    dim: int = 32,
    noise: float = 0.5,
    no_audio_every: int = 7,
    seed: int = 0,
    encoder_hash: str = "synthetic",
) -> DataRoot:
    """An audio_features shard beside every clips shard of the root; returns the root. `encoder_hash` stands
    for the audio stage's own config fingerprint (another one: features made by another encoder)."""
    rng = np.random.default_rng([seed, 23])
    protos: dict[str, np.ndarray] = {}
    for marker in list_markers(root, "clips"):
        clips = read_shard(root, "clips", marker.shard)
        if clips is None:
            continue
        tables = []
        for vid in dict.fromkeys(clips.column("video_id").to_pylist()):
            rows = [r for r in clips.to_pylist() if r["video_id"] == vid]
            if int(vid[-5:]) % no_audio_every == no_audio_every - 1:
                tables.append(
                    audio_table(AudioResult(vid, "no_audio", "no audio stream"), "logmel_stats", False)
                )
                continue
            seconds = max(r["end_ms"] for r in rows) // 1000
            step_of = np.empty(seconds, dtype=object)
            for r in rows:
                step_of[r["start_ms"] // 1000 : r["end_ms"] // 1000] = r["text"]
            for text in step_of:
                protos.setdefault(text, rng.standard_normal(dim).astype(np.float32))
            vectors = np.stack([protos[t] for t in step_of]) + noise * rng.standard_normal((seconds, dim))
            starts = np.arange(seconds, dtype=np.int64) * 1000
            result = AudioResult(vid, "ok", None, starts, starts + 1000, vectors.astype(np.float32))
            tables.append(audio_table(result, "logmel_stats", False))
        table = pa.concat_tables(tables)
        write_shard(root, "audio_features", marker.shard, table, config_hash=encoder_hash,
                    own_hash=encoder_hash, code_version="synthetic", rows_in=table.num_rows)  # fmt: skip
    return root
