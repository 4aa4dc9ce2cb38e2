"""A small HowTo100M release in the published formats, written by hand for tests.

HowTo100M_v1.csv: `video_id,category_1,category_2,rank,task_id`; task_ids.csv: `id<TAB>title`, no header;
caption.json: {video_id: {"start": [s...], "end": [s...], "text": [...]}} as Python's json.dump writes it
(so a float NaN text is the bare token NaN); features: one (rows, 2048) float16 .npy per video, rows L2'd.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# Real video ids from the release's CSV (see tests/fixtures/howto100m/README.md); the rest is made up.
VIDEO_A, VIDEO_B, VIDEO_C, VIDEO_D = "nVbIUDjzWY4", "gkjnR3-ZVts", "rwmt7Cbuvfs", "HnTLh99gcxY"
TASKS = {
    "52907": 'Fix a "Kick Start" on a Motorcycle',  # a title with double quotes, kept byte for byte
    "25938": "Make a Lemon\u2010Lime Soda, Quickly",
}
V1_ROWS = [
    (VIDEO_A, "Cars & Other Vehicles", "Motorcycles", 27, "52907"),
    (VIDEO_B, "Food and Entertaining", "Drinks", 6, "25938"),
    (VIDEO_C, "Cars & Other Vehicles", "Motorcycles", 99, "52907"),
    (VIDEO_D, "Cars & Other Vehicles", "Motorcycles", 35, "52907"),  # no entry in caption.json
]
CAPTIONS = {
    VIDEO_B: {
        "start": [0.0, 3.89, 6.72],
        "end": [6.72, 11.25, 18.96],
        "text": ["slackline", 5.0, "learning walk walk walk"],  # a number where a text should be
    },
    VIDEO_A: {
        # ms rounding: 0.2344 s -> 234 ms, 6.5600000000000005 -> 6560, 9.9996 -> 10000
        "start": [0.2344, 2.3, 6.5600000000000005, 8.0, 9.0],
        "end": [2.3, 6.9, 9.9996, 9.5, 9.8],
        "text": ["hi harrison kevin", float("nan"), "set slackline", "", "   "],
    },
    VIDEO_C: {"start": [1.0], "end": [3.5], "text": ["working reciprocating saw"]},
}
SHAPES = {VIDEO_A: (10, 7), VIDEO_B: (12, 8), VIDEO_C: (4, 3)}  # (2D rows, 3D rows); D has no files


@dataclass(frozen=True)
class Release:
    csv: Path
    task_ids: Path
    captions: Path
    features_2d: Path
    features_3d: Path


def l2_rows(rng: np.random.Generator, n: int, dim: int = 2048) -> np.ndarray:
    rows = rng.standard_normal((n, dim)).astype(np.float32)
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float16)


def write_release(folder: Path, seed: int = 0) -> Release:
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / "HowTo100M_v1.csv"
    csv.write_text(
        "video_id,category_1,category_2,rank,task_id\n"
        + "".join(f"{v},{c1},{c2},{r},{t}\n" for v, c1, c2, r, t in V1_ROWS)
    )
    task_ids = folder / "task_ids.csv"
    task_ids.write_text("".join(f"{k}\t{v}\n" for k, v in TASKS.items()), encoding="utf-8")
    captions = folder / "caption.json"
    captions.write_text(json.dumps(CAPTIONS), encoding="utf-8")  # NaN as the bare token, like json.dump
    rng = np.random.default_rng(seed)
    dirs = folder / "feature_2d", folder / "feature_3d"
    for directory in dirs:
        directory.mkdir(exist_ok=True)
    for video, (n2, n3) in SHAPES.items():
        np.save(dirs[0] / f"{video}.npy", l2_rows(rng, n2))
        # the 3D file sits under the task's folder, the other layout the reference code reads
        task = next(t for v, *_, t in V1_ROWS if v == video)
        (dirs[1] / task).mkdir(exist_ok=True)
        np.save(dirs[1] / task / f"{video}.npy", l2_rows(rng, n3))
    return Release(csv, task_ids, captions, *dirs)


def write_training_release(folder: Path, n_videos: int = 12, clips: int = 8, seed: int = 1) -> Release:
    """A bigger release for training: every video has captions and both feature files (flat layout)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ids = [f"vid{i:04d}abcd" for i in range(n_videos)]
    steps = ["cut the wood", "sand the edge", "paint the board", "stir the paint", "fold the paper"]
    (folder / "task_ids.csv").write_text("1\tBuild a Birdhouse\n2\tFold a Paper Crane\n", encoding="utf-8")
    lines = ["video_id,category_1,category_2,rank,task_id"]
    captions = {}
    dirs = folder / "f2d", folder / "f3d"
    for directory in dirs:
        directory.mkdir(exist_ok=True)
    for i, vid in enumerate(ids):
        task = 1 + i % 2
        lines.append(
            f"{vid},{'Hobbies and Crafts' if task == 1 else 'Education and Communications'},Crafts,{i + 1},{task}"
        )
        captions[vid] = {
            "start": [4.0 * k for k in range(clips)],
            "end": [4.0 * k + 3.5 for k in range(clips)],
            "text": [steps[(i + k) % len(steps)] for k in range(clips)],
        }
        np.save(dirs[0] / f"{vid}.npy", l2_rows(rng, 4 * clips, 64))
        np.save(dirs[1] / f"{vid}.npy", l2_rows(rng, 6 * clips, 64))
    (folder / "HowTo100M_v1.csv").write_text("\n".join(lines) + "\n")
    (folder / "caption.json").write_text(json.dumps(captions), encoding="utf-8")
    return Release(folder / "HowTo100M_v1.csv", folder / "task_ids.csv", folder / "caption.json", *dirs)


def import_args(release: Release, root: Path, videos_per_shard: int) -> list[str]:
    """`howto import howto100m` arguments for every file of `release`, into `root`."""
    return [
        "import", "howto100m", "--csv", str(release.csv), "--task-ids", str(release.task_ids),
        "--captions", str(release.captions), "--features-2d", str(release.features_2d),
        "--features-3d", str(release.features_3d), "--videos-per-shard", str(videos_per_shard),
        "--data-root", str(root),
    ]  # fmt: skip


def kill_after_the_first_shard(patch: pytest.MonkeyPatch) -> None:
    """Make an import stop as if killed (KeyboardInterrupt: no handler of ours runs) once it has written its
    first videos shard; `patch` undoes it."""
    from tasks.howto100m.importer import Importer

    write_shard = Importer.write_shard

    def killed_after_the_first(self: Importer, index: int, group: list[Any]) -> None:
        if index == 1:
            raise KeyboardInterrupt
        write_shard(self, index, group)

    patch.setattr(Importer, "write_shard", killed_after_the_first)
