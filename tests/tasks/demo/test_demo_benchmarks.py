"""The demo world's ground truth in the CrossTask and YouCook2 layouts reads back with the official readers."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from storage.layout import DATA_ROOT_ENV, DataRoot
from tasks.demo.benchmarks import DemoBenchmarks, annotated_videos, task_id, write_demo_benchmarks
from tasks.demo.evaluation import rerun_commands
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


def test_rerun_commands_name_the_run_and_a_data_root_other_than_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `howto demo` prints to score the run again: runnable as printed (quoted paths, real options),
    on the run it scored, in the data root it used (said only when that is not the default one)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    files = DemoBenchmarks(
        tmp_path / "my bench" / "crosstask", tmp_path / "yc.json", tmp_path / "videos", ("v",)
    )
    elsewhere = DataRoot.from_any(tmp_path / "other root")
    for root, named in ((elsewhere, True), (DataRoot.from_any(None), False)):
        commands = [shlex.split(c) for c in rerun_commands(root, "run-abc", files)]
        assert [c[:3] for c in commands] == [["howto", "eval", "crosstask"], ["howto", "eval", "youcook2"]]
        for args in commands:
            assert args[args.index("--checkpoint") + 1] == "run-abc"
            assert str(files.videos) in args
            if named:
                assert args[args.index("--data-root") + 1] == elsewhere.url
            else:
                assert "--data-root" not in args
            result = CliRunner().invoke(app, [*args[1:], "--help"])  # every option is the command's own
            assert result.exit_code == 0, result.output
