"""Bench helpers that the numbers rest on: the peak-memory sampler and the inputs' size and cost."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tasks.bench.features import bench_input
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


def test_bench_inputs_are_a_360p_videos_inputs() -> None:
    frames, gflop_2d = bench_input(MODEL_2D, 2)
    clips, gflop_3d = bench_input(MODEL_3D, 3)
    assert frames.shape == (2, 224, 398, 3) and clips.shape == (3, 16, 112, 112, 3)
    assert gflop_2d == pytest.approx(2 * 23.0 * 398 / 224) and gflop_3d == pytest.approx(3 * 19.1)
