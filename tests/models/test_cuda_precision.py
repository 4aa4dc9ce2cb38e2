"""Which precision "auto" picks on a CUDA device, by its compute capability (no GPU needed: torch.cuda's
answers are stubbed, as a V100 or an A100 would give them)."""

from __future__ import annotations

import pytest
import torch

from models.encoders import cuda_bf16_native, pick_runtime
from models.train_loop import native_bf16, pick_precision


@pytest.fixture
def gpu(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[int, int]]:
    """A stand-in GPU whose capability the test sets; torch's own bf16 check says yes, as it does for
    emulated bf16 by default."""
    caps: dict[str, tuple[int, int]] = {"cuda:0": (8, 0), "cuda:1": (8, 0)}

    def capability(device: torch.device | int | None = None) -> tuple[int, int]:
        index = device.index if isinstance(device, torch.device) else device
        return caps[f"cuda:{index or 0}"]

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(caps))
    monkeypatch.setattr(torch.cuda, "get_device_capability", capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    monkeypatch.setattr(torch.version, "hip", None)
    return caps


def test_auto_is_bf16_only_where_the_gpu_has_bf16_tensor_cores(gpu: dict[str, tuple[int, int]]) -> None:
    assert pick_runtime("cuda", "auto").precision == "bf16"  # A100-class
    gpu["cuda:0"] = (7, 0)  # V100: bf16 only emulated
    assert pick_runtime("cuda", "auto").precision == "fp16"
    assert not native_bf16(torch.device("cuda")) and pick_precision(torch.device("cuda"), "auto") == "fp32"


def test_the_device_asked_for_is_the_one_checked(gpu: dict[str, tuple[int, int]]) -> None:
    gpu["cuda:0"] = (7, 5)  # a T4 as device 0, an A100 as device 1
    assert cuda_bf16_native(torch.device("cuda:1")) and not cuda_bf16_native(torch.device("cuda:0"))
    assert pick_runtime("cuda:1", "auto").precision == "bf16"
    assert pick_runtime("cuda:0", "auto").precision == "fp16"


def test_a_cpu_device_is_never_cuda_bf16() -> None:
    assert not cuda_bf16_native(torch.device("cpu"))


def test_a_device_this_machine_lacks_is_refused_in_words(gpu: dict[str, tuple[int, int]]) -> None:
    """Two cards: cuda:2 is named as missing, a device kind torch has no use for here is refused, and
    the machine without CUDA says so (not a traceback at the first tensor moved)."""
    from models.encoders import DeviceUnavailable, pick_device

    assert pick_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(DeviceUnavailable, match=r"this machine has 2 CUDA device\(s\)"):
        pick_device("cuda:2")
    with pytest.raises(DeviceUnavailable, match="not a device"):
        pick_device("tpu")
    with pytest.raises(DeviceUnavailable, match="only auto, cpu, cuda"):
        pick_device("meta")


def test_no_cuda_is_refused_in_words(monkeypatch: pytest.MonkeyPatch) -> None:
    from models.encoders import DeviceUnavailable, pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceUnavailable, match="no CUDA device"):
        pick_device("cuda")
    assert pick_device("auto") == torch.device("cpu") and pick_device("cpu") == torch.device("cpu")
