"""How the stage's "auto" settings resolve for a CPU and for a GPU runtime (no GPU needed: the runtime is
only read, and whether ffmpeg can decode on the GPU is the one thing asked of the machine)."""

from __future__ import annotations

import pytest
import torch

from models.encoders import Runtime, pick_runtime
from tasks.features import decoder_choice, pipeline
from tasks.features.config import ExtractFeaturesConfig
from tasks.features.extractor import GPU_BATCH_2D, GPU_BATCH_3D
from tasks.features.pipeline import extractor_settings


def _gpu(index: int) -> Runtime:
    return Runtime(torch.device("cuda", index), torch.bfloat16, True, False, True, True)


def test_a_cpu_keeps_per_video_batches_and_cpu_decoding() -> None:
    s = extractor_settings(ExtractFeaturesConfig(), pick_runtime("cpu", "fp32"))
    assert (s.batch_2d, s.batch_3d, s.decode_workers) == (16, 32, 2)
    assert not s.across_videos and not s.pad_batches and s.hwaccel is None
    assert s.decoder == "ffmpeg"  # auto, with ffmpeg installed (setup installs it)


def _gpu_decoders(monkeypatch: pytest.MonkeyPatch, usable: set[str]) -> list[tuple[str, str]]:
    """Stand in for the probe of which decoders reach NVDEC (it encodes and decodes a clip on the GPU)."""
    probed: list[tuple[str, str]] = []

    def gpu_decodes(device: str):  # noqa: ANN202 - the checker decoder_choice.resolve calls
        return lambda decoder: probed.append((device, decoder)) or decoder in usable

    monkeypatch.setattr(decoder_choice, "gpu_decodes", gpu_decodes)
    return probed


@pytest.mark.parametrize(("index", "hwaccel"), [(0, "cuda"), (1, "cuda:1")])
def test_a_gpu_batches_across_videos_and_decodes_on_its_own_device(
    monkeypatch: pytest.MonkeyPatch, index: int, hwaccel: str
) -> None:
    probed = _gpu_decoders(monkeypatch, {"ffmpeg", "pyav"})
    s = extractor_settings(ExtractFeaturesConfig(), _gpu(index))
    assert (s.batch_2d, s.batch_3d) == (GPU_BATCH_2D, GPU_BATCH_3D)
    assert s.across_videos and s.pad_batches
    assert s.hwaccel == hwaccel  # NVDEC on the GPU the encoders run on, not always GPU 0
    assert s.decoder == "ffmpeg" and probed == [(hwaccel, "ffmpeg")]  # that GPU's decoder is the one probed


def test_a_gpu_whose_ffmpeg_lacks_nvdec_decodes_on_the_cpu_unless_nvdec_is_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PyAV's NVDEC path measured slower than CPU decoding (decoder_choice.for_the_stage): under auto the
    command line decodes on the CPU; asked for by name, NVDEC comes through PyAV, in child processes."""
    probed = _gpu_decoders(monkeypatch, {"pyav"})
    s = extractor_settings(ExtractFeaturesConfig(), _gpu(1))
    assert (s.decoder, s.hwaccel) == ("ffmpeg", None) and probed == [("cuda:1", "ffmpeg"), ("cuda:1", "pyav")]
    asked = extractor_settings(ExtractFeaturesConfig(decode_hwaccel="cuda"), _gpu(1))
    assert (asked.decoder, asked.hwaccel) == ("pyav-child", "cuda:1")
    named = extractor_settings(ExtractFeaturesConfig(decoder="ffmpeg", decode_hwaccel="cuda"), _gpu(1))
    assert (named.decoder, named.hwaccel) == ("ffmpeg", None)  # named by the user: kept, on the CPU


def test_a_gpu_without_a_usable_decoder_decodes_on_the_cpu(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _gpu_decoders(monkeypatch, set())
    s = extractor_settings(ExtractFeaturesConfig(decode_workers=5), _gpu(0))
    assert s.hwaccel is None and s.decode_workers == 5
    assert "decoding on the CPU" in caplog.text


def test_a_host_without_ffmpeg_decodes_through_pyav_unless_ffmpeg_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(decoder_choice, "cli_installed", lambda: False)
    cpu = pick_runtime("cpu", "fp32")
    assert extractor_settings(ExtractFeaturesConfig(), cpu).decoder == "pyav"
    with pytest.raises(decoder_choice.DecoderUnavailable, match="not on PATH"):
        extractor_settings(ExtractFeaturesConfig(decoder="ffmpeg"), cpu)


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


def test_a_gpu_host_without_ffmpeg_decodes_in_pyav_children_on_the_cpu_and_doctor_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.cli_doctor import decode_check

    monkeypatch.setattr(decoder_choice, "cli_installed", lambda: False)
    _gpu_decoders(monkeypatch, {"pyav"})
    s = extractor_settings(ExtractFeaturesConfig(), _gpu(0))
    assert (s.decoder, s.hwaccel, s.decode_workers > 0) == ("pyav-child", None, True)
    check = decode_check(_gpu(0), "auto", "auto")
    assert check.status == "ok" and "decoded on the CPU through pyav-child" in check.detail
    assert "decode_hwaccel=cuda" in check.fix
    asked = decode_check(_gpu(0), "cuda", "auto")  # NVDEC by name: PyAV's, in child processes
    assert asked.status == "ok" and asked.detail.startswith("pyav-child decodes H.264 on cuda")
