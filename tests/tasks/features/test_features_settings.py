"""How the stage's "auto" settings resolve for a CPU and for a GPU runtime (no GPU needed: the runtime is
only read, and whether ffmpeg can decode on the GPU is the one thing asked of the machine)."""

from __future__ import annotations

import pytest
import torch

from models.encoders import Runtime, pick_runtime
from tasks.features import pipeline
from tasks.features.config import ExtractFeaturesConfig
from tasks.features.extractor import GPU_BATCH_2D, GPU_BATCH_3D
from tasks.features.pipeline import extractor_settings


def _gpu(index: int) -> Runtime:
    return Runtime(torch.device("cuda", index), torch.bfloat16, True, False, True, True)


def test_a_cpu_keeps_per_video_batches_and_cpu_decoding() -> None:
    s = extractor_settings(ExtractFeaturesConfig(), pick_runtime("cpu", "fp32"))
    assert (s.batch_2d, s.batch_3d, s.decode_workers) == (16, 32, 2)
    assert not s.across_videos and not s.pad_batches and s.hwaccel is None


@pytest.mark.parametrize(("index", "hwaccel"), [(0, "cuda"), (1, "cuda:1")])
def test_a_gpu_batches_across_videos_and_decodes_on_its_own_device(
    monkeypatch: pytest.MonkeyPatch, index: int, hwaccel: str
) -> None:
    probed: list[str] = []
    monkeypatch.setattr(pipeline, "hwaccel_available", lambda device: probed.append(device) or True)
    s = extractor_settings(ExtractFeaturesConfig(), _gpu(index))
    assert (s.batch_2d, s.batch_3d) == (GPU_BATCH_2D, GPU_BATCH_3D)
    assert s.across_videos and s.pad_batches
    assert s.hwaccel == hwaccel  # NVDEC on the GPU the encoders run on, not always GPU 0
    assert probed == [hwaccel]  # and that GPU's decoder is the one probed


def test_a_gpu_without_a_usable_decoder_decodes_on_the_cpu(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(pipeline, "hwaccel_available", lambda device: False)
    s = extractor_settings(ExtractFeaturesConfig(decode_workers=5), _gpu(0))
    assert s.hwaccel is None and s.decode_workers == 5
    assert "decoding on the CPU" in caplog.text


@pytest.mark.parametrize(
    ("setting", "runtime", "wanted"),
    [
        ("auto", "cpu", None),
        ("none", "cuda:1", None),
        ("auto", "cuda:0", "cuda"),
        ("auto", "cuda:1", "cuda:1"),
        ("cuda", "cpu", "cuda"),  # asked for by hand: GPU 0's decoder, the encoders on the CPU
    ],
)
def test_which_hardware_decoder_a_setting_asks_for(setting: str, runtime: str, wanted: str | None) -> None:
    rt = pick_runtime("cpu", "fp32") if runtime == "cpu" else _gpu(int(runtime.partition(":")[2]))
    assert pipeline.hwaccel_wanted(setting, rt) == wanted
