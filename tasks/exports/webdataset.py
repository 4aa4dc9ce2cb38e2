"""WebDataset export: tar shards of N samples, one per clip (caption JSON + pooled 2D+3D vector) or per video.

Each sample is the files `<key>.json` and `<key>.<name>.npy` side by side in the tar, which is what the
`webdataset` library groups into one sample (the key stops at the first dot, so keys hold none).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from storage.layout import DataRoot
from tasks.exports.select import ExportFilter, Selection, ShardClips
from tasks.exports.staging import staged_export
from tasks.exports.target import check_target, write_marker
from tasks.train.pooling import MODELS, features_by_video

Sample = dict[str, bytes]
CLIP_FIELDS = ("clip_id", "video_id", "task_id", "category", "idx", "start_ms", "end_ms", "text",
               "text_no_stopwords", "n_words")  # fmt: skip


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def json_bytes(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, sort_keys=True).encode("utf-8")


class TarShards:
    """Writes samples into `shard-000000.tar`, ... with `per_shard` samples each (temp name, then rename)."""

    def __init__(self, out: Path, per_shard: int) -> None:
        self.out, self.per_shard = out, per_shard
        self.paths: list[Path] = []
        self.samples = 0
        self._tar: tarfile.TarFile | None = None
        self._in_shard = 0
        out.mkdir(parents=True, exist_ok=True)

    def add(self, key: str, files: Sample) -> None:
        if "." in key or "/" in key:
            raise ValueError(f"sample key {key!r} may hold no dot or slash")
        if self._tar is None or self._in_shard == self.per_shard:
            self._close()
            path = self.out / f"shard-{len(self.paths):06d}.tar"
            self.paths.append(path)
            self._tar = tarfile.open(self._tmp(path), "w", format=tarfile.USTAR_FORMAT)
            self._in_shard = 0
        for ext, data in files.items():
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size, info.mode, info.mtime = len(data), 0o644, 0  # same bytes on every export
            self._tar.addfile(info, io.BytesIO(data))
        self._in_shard += 1
        self.samples += 1

    @staticmethod
    def _tmp(path: Path) -> Path:
        return path.with_name(f".tmp-{path.name}")

    def _close(self) -> None:
        if self._tar is not None:
            self._tar.close()
            os.replace(self._tmp(self.paths[-1]), self.paths[-1])
            self._tar = None

    def close(self) -> None:
        self._close()


def clip_samples(
    selection: Selection, part: ShardClips, features: str, drops: Counter[str]
) -> Iterator[tuple[str, Sample]]:
    """Per-clip samples: `json` with the caption and its span, `npy` with the pooled 4096-d vector."""
    clips = part.clips
    vectors = None
    if features == "pooled":
        vectors = selection.pooled_vectors(part, drops)
        if vectors is None:
            return
        clips = clips.filter(
            pa.array([c in vectors for c in clips.column("clip_id").to_pylist()], pa.bool_())
        )
        selection.exported(clips.column("video_id").to_pylist())
    for row in clips.select(list(CLIP_FIELDS)).to_pylist():
        files = {"json": json_bytes(row)}
        if vectors is not None:
            files["npy"] = npy_bytes(np.asarray(vectors[row["clip_id"]], dtype=np.float16))
        yield row["clip_id"], files


def video_samples(
    selection: Selection, part: ShardClips, features: str, drops: Counter[str]
) -> Iterator[tuple[str, Sample]]:
    """Per-video samples: `json` with the video's clips in order, `<model>.npy` with its feature rows as stored."""
    clips = part.clips
    by_video: dict[str, Any] = {}
    if features != "none":
        table = selection.features(part.shard, set(clips.column("video_id").to_pylist()))
        by_video = features_by_video(table) if table is not None else {}
    rows = clips.select(list(CLIP_FIELDS)).to_pylist()
    start = 0
    while start < len(rows):
        vid = rows[start]["video_id"]
        end = start
        while end < len(rows) and rows[end]["video_id"] == vid:
            end += 1
        group = rows[start:end]
        start = end
        files = {"json": json_bytes({
            "video_id": vid, "task_id": group[0]["task_id"], "category": group[0]["category"],
            "clips": [{k: r[k] for k in ("idx", "start_ms", "end_ms", "text", "text_no_stopwords", "n_words")}
                      for r in group],
        })}  # fmt: skip
        if features != "none":
            if vid not in by_video:
                drops["no_features"] += len(group)
                continue
            for model in MODELS:
                files[f"{model}.npy"] = npy_bytes(np.asarray(by_video[vid].rows[model], dtype=np.float16))
            selection.exported((vid,))
        yield vid, files


def export_webdataset(
    root: DataRoot, out: Path, filt: ExportFilter, *, per: Literal["clip", "video"] = "clip",
    features: Literal["pooled", "rows", "none"] | None = None, samples_per_shard: int = 1000,
) -> dict[str, Any]:  # fmt: skip
    """Write the selection as tar shards; returns counts (samples, shards, clips held back by reason).

    `features` None: pooled vectors per clip, stored rows per video."""
    if features is None:
        features = "pooled" if per == "clip" else "rows"
    if (per, features) in (("clip", "rows"), ("video", "pooled")):
        raise ValueError(
            "per-clip samples carry pooled vectors (or none); per-video samples carry rows (or none)"
        )
    # Never a user's folder; the export is built beside `out` and swapped in whole (see staging), so the
    # parent must be writable too.
    check_target(root, out, "webdataset", beside=True)
    selection = Selection(root, filt)
    selection.require_clips(features)  # an empty selection is refused before the folder is made
    drops: Counter[str] = Counter()
    make = clip_samples if per == "clip" else video_samples
    with staged_export(out, "webdataset") as staged:
        check_target(root, out, "webdataset")  # again under the lock: `recover` may have put one back
        writer = TarShards(staged, samples_per_shard)
        write_marker(staged, "webdataset")
        for part in selection.shards():
            for key, files in make(selection, part, features, drops):
                writer.add(key, files)
        writer.close()
    return {
        "format": "webdataset", "per": per, "features": features, "samples": writer.samples,
        "shards": [str(out / p.name) for p in writer.paths], "held_back": selection.held_back(drops),
        "random_weight_videos": len(selection.random_weight_videos) if features != "none" else 0,
    }  # fmt: skip
