"""The demo world's ground truth in the CrossTask and YouCook2 layouts reads back with the official readers."""

from __future__ import annotations

from pathlib import Path

from tasks.demo.benchmarks import annotated_videos, task_id, write_demo_benchmarks
from tasks.demo.world import World
from tasks.evaluation import formats
from tasks.evaluation.features import find_videos
from tasks.evaluation.run import crosstask_videos
from tasks.train.split import is_heldout


def test_demo_ground_truth_in_both_layouts(demo_world: World, tmp_path: Path) -> None:
    files = write_demo_benchmarks(demo_world, tmp_path, heldout_fraction=0.3)
    videos = annotated_videos(demo_world)
    held = {v.id for v in videos if is_heldout(v.id, 0.3)}
    assert set(files.heldout) == held and 0 < len(held) < len(videos)

    cards, val = crosstask_videos(files.crosstask, "val")
    assert {v for vids in val.values() for v in vids} == held
    _, everything = crosstask_videos(files.crosstask, "all")
    assert sum(len(v) for v in everything.values()) == len(videos)
    video = next(v for v in videos if v.id in held)
    card = cards[task_id(video.task)]
    rows = formats.read_step_annotation(
        files.crosstask / "annotations" / f"{card.task_id}_{video.id}.csv", len(card.steps)
    )
    spans = [s for s in video.segments if s.step is not None]
    assert [r[0] for r in rows] == [s.step + 1 for s in spans]  # 1-based steps, in the order shown
    assert [(r[1], r[2]) for r in rows] == [(s.start_ms / 1000, s.end_ms / 1000) for s in spans]
    assert all("," not in step for step in card.steps)

    segments = formats.read_youcook2(files.youcook2, "validation")
    assert {s.video_id for s in segments} == held
    assert sum(1 for s in segments if s.video_id == video.id) == len(spans)
    assert len(formats.read_youcook2(files.youcook2, "training")) > len(segments)
    found, missing = find_videos(files.videos, [v.id for v in videos])
    assert not missing and len(found) == len(videos)
