"""The bench's line comparing frames kept on the device with PyAV's CPU frames (run here on CPU tensors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tasks.bench import decode_agreement
from tasks.bench.decode_agreement import agreement_line
from tasks.bench.decode_agreement import decode_agreement as agreement
from tasks.bench.features import make_video
from tasks.features import decode_av
from tasks.features.decode import SPEC_2D, SPEC_3D

SPECS = {"2d": SPEC_2D, "3d": SPEC_3D}


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("agree") / "v.mp4"
    make_video(path, 2)
    return path


def test_the_device_frames_agree_with_the_cpu_frames_and_the_line_says_so(video: Path) -> None:
    info = decode_av.probe(str(video))
    rows, ran = agreement(video, SPECS, info, torch.device("cpu"), None)
    assert ran == "cpu"
    assert [(r.key, r.cpu_frames, r.device_frames) for r in rows] == [("2d", 2, 2), ("3d", 48, 48)]
    assert all(r.mean_levels is not None and r.mean_levels < 1.5 for r in rows)
    line = agreement_line(video, SPECS, info, torch.device("cpu"), None)
    assert "2d 2/2 frames" in line and "3d 48/48 frames" in line and "decoded on cpu" in line


def test_different_frame_counts_are_named_not_compared(video: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = decode_av.probe(str(video))
    real = decode_agreement.decode_device.device_outputs

    def one_frame_short(*args, **kwargs):  # type: ignore[no-untyped-def]
        for key, frames in real(*args, **kwargs):
            yield key, frames[:-1] if key == "3d" else frames

    monkeypatch.setattr(decode_agreement.decode_device, "device_outputs", one_frame_short)
    line = agreement_line(video, SPECS, info, torch.device("cpu"), None)
    assert "3d 47 frames vs 48: COUNTS DIFFER" in line
    assert np.isfinite(float(line.split("mean ")[1].split(" levels")[0]))  # 2d still compared
