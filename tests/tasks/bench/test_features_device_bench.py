"""`howto bench features --device ...`: the many-videos bench the GPU goal is read from, run on the CPU at a
few seconds of video (same code path: batches across videos, decoders in parallel, the reference way)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tasks.bench.features import decode_line, gflop_of
from tasks.bench.features_device import run_device_bench
from tasks.features.decode import SPEC_2D, SPEC_3D, probe
from tasks.features.extractor import MODEL_2D, MODEL_3D
from tests.cpu import worker_threads
from tests.tasks.features.features_media import encode_frames, fake_nvdec_path, index_frames


def test_device_bench_counts_every_videos_work_and_compares_with_the_reference_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run as on a GPU image, which often has no ffmpeg executable: the bench then makes its video and
    decodes through PyAV, as the stage's features.decoder=auto does, and says so. (The command line's
    decode ceiling and reference rows are the CPU bench's, tests/tasks/features/test_features_bench.py.)"""
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # the venv's tools, no ffmpeg/ffprobe
    torch.set_num_threads(worker_threads())
    lines: list[str] = []
    bench = run_device_bench(
        "cpu", tmp_path, seconds=2, videos=2, log=lines.append, reference_videos=1, ceiling_s=0.2
    )
    ours = {r.models: r for r in bench.ours}
    ref = {r.models: r for r in bench.reference}
    assert set(ours) == set(ref) == {"2d", "3d", "both"}
    # 2 videos x 2 s: 2 frames at 1 fps (224x398) and 48 frames = 3 clips of 16 per video.
    assert ours["2d"].gflop == pytest.approx(gflop_of(MODEL_2D, 4, (224, 398, 3)))
    assert ours["3d"].gflop == pytest.approx(gflop_of(MODEL_3D, 6, (112, 112, 3)))
    assert ours["both"].gflop == pytest.approx(ours["2d"].gflop + ours["3d"].gflop)
    assert all(r.video_s == pytest.approx(4.0, abs=0.2) for r in bench.ours)
    # The reference runs one video (2 s); its "both" is its two models one after the other.
    assert ref["both"].video_s == pytest.approx(2.0, abs=0.1)
    assert ref["both"].wall_s == pytest.approx(ref["2d"].wall_s + ref["3d"].wall_s)
    assert bench.speedup("both") == pytest.approx(ours["both"].realtime / ref["both"].realtime)
    assert bench.ceiling_gflops > 0 and bench.host_peak_mb > 0
    text = "\n".join(lines)
    assert "path: cpu" in text and "decoders" in text and "speed-up ours/reference" in text
    assert "decode on the CPU through pyav (PyAV on cuda: no; no ffmpeg executable)" in text
    assert "decode alone (one PyAV decode per video" in text and "cores' PyAV work" in text
    assert "goal both models" not in text  # the 1000x goal is a GPU's
    assert text.count("videos decoded 2 on cpu") == 3  # which decoder ran, for each measured run


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_cuda_bench_without_a_gpu_says_so_and_exits_2() -> None:
    howto = Path(sys.executable).parent / "howto"
    done = subprocess.run(
        [str(howto), "bench", "features", "--device", "cuda"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert "no CUDA device here" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("nvdec", ["decodes", "fails mid-stream"])
def test_decode_line_names_the_decoder_that_really_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nvdec: str
) -> None:
    """Asked for NVDEC, the decode ceiling is labelled with the decoder that did the work: a run NVDEC gave
    up on is the CPU's (its redo counted in the time), with the reason."""
    video = encode_frames(tmp_path / "v.mp4", index_frames(50), "25")
    wrong = (
        encode_frames(tmp_path / "wrong.mp4", 255 - index_frames(50), "25") if nvdec != "decodes" else None
    )
    monkeypatch.setenv("PATH", fake_nvdec_path(tmp_path, fail_with=wrong))
    line, per_cpu_s = decode_line(video, {MODEL_2D: SPEC_2D, MODEL_3D: SPEC_3D}, probe(str(video)), "cuda")
    assert per_cpu_s > 0 and "one ffmpeg decode per video" in line and "cores' ffmpeg work" in line
    if nvdec == "decodes":
        assert "outputs, on cuda): " in line and "decode engines" in line
    else:
        assert "on the CPU (cuda gave up: failed mid-stream: " in line and "decode engines" not in line
