"""Run the 2D/3D encoders fast: device and precision choice, channels_last, batched L2-normalised output."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

# Forward cost of one input at the reference sizes (224x224 frame, 16x112x112 clip), for GFLOP/s reports.
RESNET152_GFLOP_PER_FRAME = 23.0
RESNEXT101_GFLOP_PER_CLIP = 19.1


@dataclass(frozen=True)
class Runtime:
    """Where and how encoders run: device, autocast dtype (None = fp32) and memory format."""

    device: torch.device
    autocast: torch.dtype | None
    channels_last: bool = True

    @property
    def precision(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.autocast]


def cpu_bf16_supported() -> bool:
    """True when oneDNN has native bf16 kernels on this CPU (avx512_bf16 / AMX); emulated bf16 is slower."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def pick_runtime(device: str = "auto", precision: str = "auto", channels_last: bool = True) -> Runtime:
    """Resolve "auto": CUDA if present; bf16 where the hardware supports it, else fp16 on CUDA, fp32 on CPU."""
    dev = torch.device(
        "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
    )
    if precision == "auto":
        if dev.type == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "bf16" if cpu_bf16_supported() else "fp32"
    dtypes: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    if precision not in dtypes:
        raise ValueError(f"unknown precision {precision!r}; use auto, fp32, bf16 or fp16")
    if precision == "fp16" and dev.type == "cpu":
        raise ValueError("fp16 is for CUDA; use bf16 or fp32 on CPU")
    return Runtime(dev, dtypes[precision], channels_last)


def prepare(model: nn.Module, rt: Runtime) -> nn.Module:
    """Move to the device in eval mode; convert weights to channels_last(_3d) when asked."""
    model = model.to(rt.device).eval()
    has_3d = any(isinstance(m, nn.Conv3d) for m in model.modules())
    if rt.channels_last:
        model = model.to(memory_format=torch.channels_last_3d if has_3d else torch.channels_last)
    else:
        model = model.to(memory_format=torch.contiguous_format)
    return model


@contextlib.contextmanager
def _autocast(rt: Runtime) -> Iterator[None]:
    if rt.autocast is None:
        yield
    else:
        with torch.autocast(device_type=rt.device.type, dtype=rt.autocast):
            yield


def encode(model: nn.Module, batch: np.ndarray, rt: Runtime) -> np.ndarray:
    """uint8 frames (N,H,W,3) or clips (N,16,H,W,3) -> L2-normalised float32 features (N, 2048)."""
    x = torch.from_numpy(batch).to(rt.device, non_blocking=True)
    if not rt.channels_last:
        # The naive path: a plain contiguous NCHW / NCTHW tensor, as a straightforward extractor makes.
        perm = (0, 3, 1, 2) if x.dim() == 4 else (0, 4, 1, 2, 3)
        x = x.permute(*perm).contiguous().permute(*np.argsort(perm).tolist())
    with torch.inference_mode(), _autocast(rt):
        out = model(x)
    out = torch.nn.functional.normalize(out.float(), dim=1)
    return out.cpu().numpy()
