"""Run the 2D/3D encoders fast: device and precision choice, the packed oneDNN path on CPU, batched
L2-normalised output."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from models.packed import onednn_available, pack_for_onednn

# Forward cost of one input at the reference sizes (224x224 frame, 16x112x112 clip), for GFLOP/s reports
# (conv FLOPs counted by torch.utils.flop_counter: 23.02 and 19.13).
RESNET152_GFLOP_PER_FRAME = 23.0
RESNEXT101_GFLOP_PER_CLIP = 19.1

_DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
_NAMES = {v: k for k, v in _DTYPES.items()}


@dataclass(frozen=True)
class Runtime:
    """Where and how encoders run.

    dtype: the compute precision. On CPU the weights are converted once to it (and, with `packed`,
    BatchNorm-folded and prepacked for oneDNN; see models/packed.py); on CUDA low precision is autocast.
    channels_last: NHWC / NDHWC activations (the uint8 frames arrive that way); False gives the plain
    contiguous NCHW path a straightforward extractor takes (the bench's naive baseline).
    """

    device: torch.device
    dtype: torch.dtype = torch.float32
    channels_last: bool = True
    packed: bool = False

    @property
    def precision(self) -> str:
        return _NAMES[self.dtype]

    @property
    def autocast(self) -> torch.dtype | None:
        """The autocast dtype (CUDA low precision only); CPU never autocasts: weights are converted once."""
        return self.dtype if self.device.type == "cuda" and self.dtype != torch.float32 else None

    def describe(self) -> str:
        """One line for logs and benches: device, precision, memory format, how weights are held."""
        fmt = "channels_last" if self.channels_last else "NCHW contiguous"
        if self.packed:
            how = "oneDNN prepacked weights, BatchNorm folded, ReLU/residual add fused, not compiled"
        elif self.autocast is not None:
            how = f"eager, autocast {self.precision}"
        else:
            how = f"eager, weights in {self.precision}"
        return f"{self.device.type} {self.precision} {fmt}, {how}"


def cpu_bf16_supported() -> bool:
    """True when oneDNN has native bf16 kernels on this CPU (avx512_bf16 / AMX); emulated bf16 is slower."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_features() -> list[str]:
    """The CPU flags that decide the path (from /proc/cpuinfo; empty where it is not readable)."""
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile")
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), [])
    except OSError:
        return []
    return [f for f in wanted if f in flags]


def pick_runtime(
    device: str = "auto", precision: str = "auto", channels_last: bool = True, packed: bool | None = None
) -> Runtime:
    """Resolve "auto": CUDA if present; bf16 where the hardware supports it, else fp16 on CUDA, fp32 on CPU.

    `packed` (default: on for CPU channels_last when oneDNN is there) selects models/packed.py.
    """
    dev = torch.device(
        "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
    )
    if precision == "auto":
        if dev.type == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "bf16" if cpu_bf16_supported() else "fp32"
    if precision not in _DTYPES:
        raise ValueError(f"unknown precision {precision!r}; use auto, fp32, bf16 or fp16")
    if precision == "fp16" and dev.type == "cpu":
        raise ValueError("fp16 is for CUDA; use bf16 or fp32 on CPU")
    if packed is None:
        packed = dev.type == "cpu" and channels_last and onednn_available()
    elif packed and (dev.type != "cpu" or not onednn_available()):
        raise ValueError("the packed path needs a CPU torch with oneDNN (mkldnn)")
    return Runtime(dev, _DTYPES[precision], channels_last, packed)


def _convert_weights(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Cast conv/norm/linear weights once; input normalisation constants stay fp32 (the forwards cast)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.Linear, nn.modules.batchnorm._BatchNorm)):
            m.to(dtype)
    return model


def prepare(model: nn.Module, rt: Runtime) -> nn.Module:
    """An encoder ready for `encode` under `rt`. The packed path returns a packed copy; the other paths
    move (and on CPU convert) the model itself, as before."""
    model = model.eval()
    if rt.packed:
        return pack_for_onednn(model, rt.dtype)
    model = model.to(rt.device)
    if rt.device.type == "cpu" and rt.dtype != torch.float32:
        model = _convert_weights(model, rt.dtype)
    has_3d = any(isinstance(m, nn.Conv3d) for m in model.modules())
    if rt.channels_last:
        return model.to(memory_format=torch.channels_last_3d if has_3d else torch.channels_last)
    return model.to(memory_format=torch.contiguous_format)


def encode(model: nn.Module, batch: np.ndarray, rt: Runtime) -> np.ndarray:
    """uint8 frames (N,H,W,3) or clips (N,16,H,W,3) -> L2-normalised float32 features (N, 2048)."""
    x = torch.from_numpy(batch).to(rt.device, non_blocking=True)
    if not rt.channels_last:
        # The naive path: a plain contiguous NCHW / NCTHW tensor, as a straightforward extractor makes.
        perm = (0, 3, 1, 2) if x.dim() == 4 else (0, 4, 1, 2, 3)
        x = x.permute(*perm).contiguous().permute(*np.argsort(perm).tolist())
    cast = contextlib.nullcontext() if rt.autocast is None else torch.autocast(rt.device.type, rt.autocast)
    with torch.inference_mode(), cast:
        out = model(x)
    out = torch.nn.functional.normalize(out.float(), dim=1)
    return out.cpu().numpy()
