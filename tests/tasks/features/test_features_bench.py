"""Bench helpers that the numbers rest on: the peak-memory sampler and the inputs' size and cost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.bench.features import BenchRow, _line, bench_input, gflop_of, median_round
from tasks.bench.peak_memory import PeakMemory
from tasks.features.extractor import MODEL_2D, MODEL_3D


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="samples /proc")
def test_peak_memory_counts_live_children() -> None:
    """A child holding 200 MB shows up in the sampled peak (ru_maxrss of children would not tell)."""
    code = "import time; x = bytearray(200 * 2**20); x[::4096] = b'1' * len(x[::4096]); time.sleep(0.6)"
    with PeakMemory() as memory:
        subprocess.run([sys.executable, "-c", code], check=True)
    assert memory.children_peak_mb >= 200
    assert memory.peak_mb >= memory.children_peak_mb + 10  # plus this process itself


# Run in a fresh interpreter: a test worker may have other live children (servers of earlier tests),
# which would rightly count as children there.
FORK_WITHOUT_EXEC = """
import json, os, time
from tasks.bench.peak_memory import PeakMemory, _rss_mb

held = bytearray(300 * 2**20)
held[::4096] = b"1" * len(held[::4096])
own = _rss_mb(os.getpid())
with PeakMemory() as memory:
    pid = os.fork()
    if pid == 0:  # the child: no exec, just the window a decoder spends before it
        time.sleep(0.6)
        os._exit(0)
    os.waitpid(pid, 0)
print(json.dumps({"own": own, "peak": memory.peak_mb, "children": memory.children_peak_mb}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="samples /proc")
def test_peak_memory_keeps_a_child_between_fork_and_exec_out_of_the_decoders() -> None:
    """A fork that has not exec'd yet shares this process's pages: it is part of this process, not a
    decoder. Counting it (RSS) charged the worker twice; PSS showed half the worker as "ffmpeg"."""
    done = subprocess.run(
        [sys.executable, "-c", FORK_WITHOUT_EXEC], capture_output=True, text=True, check=True, timeout=60
    )
    seen = json.loads(done.stdout)
    assert seen["peak"] >= 300
    assert seen["peak"] < 1.5 * seen["own"], seen  # not this process twice
    assert seen["children"] < 50, seen


def test_bench_inputs_are_a_360p_videos_inputs() -> None:
    frames, gflop_2d = bench_input(MODEL_2D, 2)
    clips, gflop_3d = bench_input(MODEL_3D, 3)
    assert frames.shape == (2, 224, 398, 3) and clips.shape == (3, 16, 112, 112, 3)
    assert gflop_2d == pytest.approx(2 * 23.0 * 398 / 224) and gflop_3d == pytest.approx(3 * 19.1)


def test_goals_judge_the_model_alone_and_end_to_end() -> None:
    """The goal lines cover each model alone and ours end to end (decode included), bf16 against 50% and
    fp32 against 70% of its ceiling; the naive path is not judged."""
    from models.encoders import pick_runtime
    from tasks.bench.features import BenchRow, _goals

    shares = [
        {"model": "2d", "precision": "bf16", "share": 0.95},
        {"model": "3d", "precision": "fp32", "share": 0.66},
    ]
    rows = [
        BenchRow("ours", "both", wall_s=10.0, video_s=30.0, gflop=1500.0, ceiling=400.0),  # 150 GFLOP/s
        BenchRow("naive", "both", wall_s=10.0, video_s=30.0, gflop=100.0, ceiling=400.0),
    ]
    logged: list[str] = []
    lines = _goals(shares, rows, pick_runtime("cpu", "bf16"), logged.append)
    assert (
        lines
        == logged
        == [
            "goal alone 2d bf16 >= 50% of its ceiling: met (95%)",
            "goal alone 3d fp32 >= 70% of its ceiling: NOT met (66%)",
            "goal end to end both bf16 >= 50% of its ceiling: NOT met (38%)",
        ]
    )


def test_end_to_end_share_is_held_to_the_median_sample_and_shows_the_spread() -> None:
    """A shared machine's 1-s GEMM varies by +-10%: the row is held to the median of the samples around it
    and prints the share against the fastest and the slowest, so a reader sees how far it can be trusted."""
    from tasks.bench.features import BenchRow, _line, held_to

    row = held_to(BenchRow("ours", "3d", wall_s=10.0, video_s=30.0, gflop=1500.0), [150, 200, 180, 170])
    assert (row.ceiling, row.ceiling_low, row.ceiling_high) == (175, 150, 200)
    assert row.share == pytest.approx(150 / 175)
    assert (
        "( 86% of the ceiling measured around it; 75%-100% against its fastest and slowest sample)"
        in _line(row)
    )
    single = BenchRow("naive", "3d", wall_s=10.0, video_s=30.0, gflop=1500.0, ceiling=175.0)
    assert _line(single).endswith("( 86% of the ceiling measured around it)")


def test_decode_share_is_the_cpu_time_ffmpeg_takes_at_the_rows_speed() -> None:
    """At 3x real time with ffmpeg decoding 21 video-seconds per CPU-second, 2 cores lose 1/14 to it."""
    from tasks.bench.features import decode_cpu_share

    assert decode_cpu_share(3.0, 21.0, 2) == pytest.approx(3 / 42)
    assert decode_cpu_share(6.0, 21.0, 2) == pytest.approx(2 * decode_cpu_share(3.0, 21.0, 2))


def test_end_to_end_bound_adds_the_decoders_cpu_time_to_each_models_time_alone() -> None:
    """60 video-seconds of one model that runs at 50% of a 1000 GFLOP/s ceiling alone: 1000 GFLOP take
    2 s; ffmpeg at 30 video-seconds per CPU-second takes 2 CPU-s, 1 s of 2 cores: at best 1000 GFLOP in
    3 s, 33%. Both models: each model's time alone, summed, plus the decode of the one pass."""
    from tasks.bench.features import BenchRow, decode_bound_share

    row = BenchRow("ours", "3d", wall_s=4.0, video_s=60.0, gflop=1000.0, ceiling=1000.0)
    assert decode_bound_share(row, {"3d": 1000.0}, {"3d": 0.5}, 30.0, 2) == pytest.approx(1 / 3)
    # A decoder that costs nothing leaves the share alone; more cores make the decoder's part smaller.
    assert decode_bound_share(row, {"3d": 1000.0}, {"3d": 0.5}, 1e12, 2) == pytest.approx(0.5)
    assert decode_bound_share(row, {"3d": 1000.0}, {"3d": 0.5}, 30.0, 4) == pytest.approx(1000 / 2500)
    both = BenchRow("ours", "both", wall_s=6.0, video_s=60.0, gflop=1500.0, ceiling=1000.0)
    # 2d: 500 GFLOP at 80% (0.625 s); 3d: 1000 at 50% (2 s); decode 1 s: 1500 GFLOP in 3.625 s.
    bound = decode_bound_share(both, {"2d": 500.0, "3d": 1000.0}, {"2d": 0.8, "3d": 0.5}, 30.0, 2)
    assert bound == pytest.approx(1500 / 3625)


def test_end_to_end_row_counts_every_copy_of_the_video(tmp_path: Path) -> None:
    """The end-to-end row runs the video once per decoder, as a worker runs a shard: its video-seconds and
    GFLOP cover every copy (the 2D rows are 1 per second, the 3D rows 1 per 16 frames at 24 fps)."""
    import torch

    from models.encoders import pick_runtime
    from models.resnet2d import build_resnet152
    from models.resnext3d import build_resnext101
    from tasks.bench.features import _run_ours, make_video

    video = tmp_path / "v.mp4"
    make_video(video, 4)
    torch.manual_seed(0)
    nets = {MODEL_2D: build_resnet152(None), MODEL_3D: build_resnext101(None)}
    row = _run_ours(video, (MODEL_2D, MODEL_3D), nets, pick_runtime("cpu", "fp32"), videos=2)
    assert row.models == "both" and row.video_s == pytest.approx(8.0, abs=0.1)
    per_video = gflop_of(MODEL_2D, 4, (224, 398)) + gflop_of(MODEL_3D, 6, (112, 112))
    assert row.gflop == pytest.approx(2 * per_video)


def test_the_workers_decode_checks_run_before_its_first_timed_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """The decoder's once-per-process checks (about 0.5 s of test decodes) are paid before the end-to-end
    rows are timed, as a worker pays them once before hours of videos, not inside the 2D row's wall time."""
    import queue

    import tasks.bench.features as bench

    events: list[str] = []
    monkeypatch.setattr(bench, "planar_rgb_exact", lambda kind: events.append(f"check {kind}") or True)
    monkeypatch.setattr(bench, "build_resnet152", lambda weights: None)
    monkeypatch.setattr(bench, "build_resnext101", lambda weights: None)
    monkeypatch.setattr(
        bench, "_run_ours", lambda video, models, *a: events.append(f"run {models}") or models
    )
    monkeypatch.setattr(bench, "median_round", lambda runs: runs)
    box: queue.Queue[object] = queue.Queue()
    bench._pipeline_worker("v.mp4", 2, box, "ffmpeg")
    assert events[:2] == ["check rgb_scaled", "check yuv_odd_width"]
    assert events[2:] == [f"run {m}" for m in ((MODEL_2D,), (MODEL_3D,), (MODEL_2D, MODEL_3D))]
    rows, _, _ = box.get_nowait()  # type: ignore[misc]
    assert len(rows) == 3


def test_end_to_end_rounds_run_the_rows_in_turn_and_keep_each_rows_median(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With rounds, the worker runs 2d, 3d, both, 2d, ... (so a slow spell of the shared machine falls on
    every row alike) and hands on, per row, the round with the median share, carrying every round's share."""
    import queue

    import tasks.bench.features as bench

    shares = iter([0.5, 0.3, 0.4, 0.6, 0.2, 0.45, 0.4, 0.35, 0.5])  # 2d, 3d, both per round
    order: list[str] = []

    def run(video: Path, models: tuple[str, ...], *a: object) -> BenchRow:
        name = "both" if len(models) == 2 else ("2d" if models == (MODEL_2D,) else "3d")
        order.append(name)
        share = next(shares)
        return BenchRow("ours", name, wall_s=1.0, video_s=60.0, gflop=share * 1000.0, ceiling=1000.0)

    monkeypatch.setattr(bench, "planar_rgb_exact", lambda kind: True)
    monkeypatch.setattr(bench, "build_resnet152", lambda weights: None)
    monkeypatch.setattr(bench, "build_resnext101", lambda weights: None)
    monkeypatch.setattr(bench, "_run_ours", run)
    box: queue.Queue[object] = queue.Queue()
    bench._pipeline_worker("v.mp4", 2, box, "ffmpeg", rounds=3)
    assert order == ["2d", "3d", "both"] * 3
    rows, _, _ = box.get_nowait()  # type: ignore[misc]
    assert [(r.models, r.share) for r in rows] == [
        ("2d", pytest.approx(0.5)),
        ("3d", pytest.approx(0.3)),
        ("both", pytest.approx(0.45)),
    ]
    assert rows[0].round_shares == pytest.approx([0.5, 0.6, 0.4])
    line = bench._line(rows[2])
    assert "45% of the ceiling measured around it; the rounds: 40%, 45%, 50%" in line


def test_the_median_round_of_an_even_count_is_the_lower_middle_one() -> None:
    runs = [
        BenchRow("ours", "3d", 1.0, 30.0, gflop, ceiling=1000.0) for gflop in (400.0, 300.0, 350.0, 500.0)
    ]
    chosen = median_round(runs)
    assert chosen.share == pytest.approx(0.35) and chosen.round_shares == pytest.approx([0.4, 0.3, 0.35, 0.5])
    assert runs[2].round_shares == []  # the runs themselves are left as they were
    single = median_round(runs[:1])
    assert "the rounds" not in _line(single)  # one round: no list to print
