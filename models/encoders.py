"""Run the 2D/3D encoders fast: device and precision choice, the packed oneDNN path on CPU, batched
L2-normalised output."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from models import amx_bottleneck
from models.compiled import CompiledEncoder, fold_batchnorm
from models.cpu_precision import amx_in_use, cpu_bf16, cpu_bf16_supported, cpu_flags
from models.nonneg_pool import one_pass_available
from models.packed import onednn_available, pack_for_onednn
from models.resnet2d import ResNet152Features
from models.resnext3d import ResNeXt3D
from models.stem_windows import windows_kernel_available

# Forward cost of one input at the reference sizes (224x224 frame, 16x112x112 clip), for GFLOP/s reports
# (conv FLOPs counted by torch.utils.flop_counter: 23.02 and 19.13).
RESNET152_GFLOP_PER_FRAME = 23.0
RESNEXT101_GFLOP_PER_CLIP = 19.1

_DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
_NAMES = {v: k for k, v in _DTYPES.items()}
# Channels a merged group reads on AMX (models/packed.py merge_groups). ResNeXt-101's grouped convs on 2
# clips, bf16, 2 Xeon cores, ms by width (unmerged, 8, 16, 32, 64, 128): layer1 2.41, 1.40, 1.30, 1.16,
# 1.79, 3.18; layer2 0.37, 0.38, 0.31, 0.33, 0.53, 0.83; layer3 on 32 clips 1.97, 1.24, 1.18, 1.08, 2.13,
# 5.54. In fp32 the same convs ran 2-5x slower at every width, so the AMX path keeps them in bf16.
AMX_GROUP_WIDTH = 32


@dataclass(frozen=True)
class Runtime:
    """Where and how encoders run.

    dtype: the compute precision. Weights are converted to it once, never autocast per call (on CPU with
    `packed` they are also BatchNorm-folded and prepacked for oneDNN, see models/packed.py).
    channels_last: NHWC / NDHWC activations (the uint8 frames arrive that way); False gives the plain
    contiguous NCHW path a straightforward extractor takes (the benches' naive and reference baselines).
    fused: BatchNorm folded into the convolutions (torch.fx) in fp32 before the cast (the CUDA path).
    compiled: torch.compile; on CUDA in "reduce-overhead" mode, i.e. replayed CUDA graphs per input shape.
    """

    device: torch.device
    dtype: torch.dtype = torch.float32
    channels_last: bool = True
    packed: bool = False
    fused: bool = False
    compiled: bool = False

    @property
    def precision(self) -> str:
        return _NAMES[self.dtype]

    @property
    def group_width(self) -> int | None:
        """The packed path's grouped convs merged to this many channels a group: on AMX in bf16 only."""
        if self.packed and self.dtype == torch.bfloat16 and amx_in_use():
            return AMX_GROUP_WIDTH
        return None

    @property
    def amx_kernel(self) -> bool:
        """Whether the packed path runs ResNeXt's layer1-2 bottleneck fronts on our AMX kernel
        (models/amx_bottleneck.py): on the AMX path, where the kernel builds and loads here."""
        return self.group_width is not None and amx_bottleneck.available()

    def _front_chunks(self) -> str:
        """How the packed encoders' front halves are chunked in this dtype (PackedEncoder)."""
        parts = [
            f"{kind} {model.FRONT_SPAN} {rows} {unit}"
            for kind, model, unit in (("3D", ResNeXt3D, "clips"), ("2D", ResNet152Features, "frames"))
            if (rows := model.front_rows(self.dtype)) is not None
        ]
        return f"{' / '.join(parts)} at a time"

    def describe(self) -> str:
        """One line for logs and benches: device, precision, memory format, how weights are held."""
        fmt = "channels_last" if self.channels_last else "NCHW contiguous"
        if self.packed:
            how = (
                "oneDNN prepacked weights, BatchNorm folded, ReLU/residual add fused, "
                "3D stem's width taps folded into channels, fed the raw clips"
                + (
                    " (its windows made by a C kernel), "
                    if self.precision == "bf16" and self.device.type == "cpu" and windows_kernel_available()
                    else ", "
                )
                + (
                    "stems' max pools in one pass (C kernel), "
                    if self.precision in ("bf16", "fp16") and one_pass_available()
                    else "stems' max pools as integer maxima, "
                )
                + ("3D layer1-2 1x1 + grouped convs fused on our AMX kernel, " if self.amx_kernel else "")
                + (
                    f"{'other ' if self.amx_kernel else ''}grouped convs merged to {self.group_width} "
                    "channels a group (AMX), "
                    if self.group_width
                    else ""
                )
                + self._front_chunks()
                + ", not compiled"
            )
        else:
            folded = "BatchNorm folded, " if self.fused else ""
            graphs = " (CUDA graphs)" if self.device.type == "cuda" else ""
            run = f"torch.compile{graphs}" if self.compiled else "eager"
            how = f"{folded}weights in {self.precision}, {run}"
        return f"{self.device.type} {self.precision} {fmt}, {how}"


class DeviceUnavailable(ValueError):
    """A device was asked for that this machine does not have (or that torch does not know)."""

    def __init__(self, preference: str, reason: str) -> None:
        super().__init__(f"device {preference!r}: {reason}")
        self.reason = reason  # without the device, for callers that name it their own way (an option)


def pick_device(preference: str = "auto") -> torch.device:
    """CUDA when available (or asked for), CPU otherwise.

    A device this process cannot use is refused here, in words, rather than by the first tensor moved
    onto it (a traceback from deep inside the encoders, after minutes of work)."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(preference)
    except RuntimeError as exc:
        raise DeviceUnavailable(preference, "not a device: use auto, cpu, cuda or cuda:N") from exc
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise DeviceUnavailable(preference, "no CUDA device here (torch sees none); use cpu or auto")
        if device.index is not None and device.index >= count:
            raise DeviceUnavailable(preference, f"this machine has {count} CUDA device(s), cuda:0 and up")
    elif device.type != "cpu":
        raise DeviceUnavailable(preference, "only auto, cpu, cuda and cuda:N are supported")
    return device


def cuda_bf16_native(device: torch.device) -> bool:
    """True when this CUDA device has bf16 tensor cores (compute capability 8.0+: Ampere and later).

    Not `torch.cuda.is_bf16_supported()`: by default it also says yes where bf16 is only emulated (V100,
    T4), and it asks about the current device rather than `device`.
    """
    if device.type != "cuda" or not torch.cuda.is_available():
        return False
    return bool(torch.version.hip) or tuple(torch.cuda.get_device_capability(device)) >= (8, 0)


def cuda_device_ids() -> list[str]:
    """One id per CUDA device this process sees: "GPU-<uuid>" (the same card under any
    CUDA_VISIBLE_DEVICES), or its index where torch gives no UUID."""
    ids = []
    for index in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
        uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
        ids.append(f"GPU-{uuid}" if uuid else f"cuda-index-{index}")
    return ids


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity: taskset, a container's cpuset), which is what its
    threads and decoders can use, not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - platforms without affinity
        return os.cpu_count() or 1


def cpu_features() -> list[str]:
    """The CPU flags that decide the path (from /proc/cpuinfo; empty where it is not readable)."""
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile")
    flags = set(cpu_flags())
    return [f for f in wanted if f in flags]


def pick_runtime(
    device: str = "auto",
    precision: str = "auto",
    channels_last: bool = True,
    packed: bool | None = None,
    compiled: bool | None = None,
) -> Runtime:
    """Resolve "auto": CUDA if present; on CUDA bf16 where the hardware has it, else fp16; on a CPU bf16
    where it measured clearly faster than fp32 (models/cpu_precision.py), else fp32.

    `packed` (default: on for CPU channels_last when oneDNN is there) selects models/packed.py. On CUDA the
    channels_last path folds BatchNorm and (default) compiles; channels_last=False is the plain eager path.
    """
    dev = pick_device(device)
    if precision == "auto":
        if dev.type == "cuda":
            precision = "bf16" if cuda_bf16_native(dev) else "fp16"
        else:
            precision = cpu_bf16().precision  # bf16 only where it measured faster here
    if precision not in _DTYPES:
        raise ValueError(f"unknown precision {precision!r}; use auto, fp32, bf16 or fp16")
    if precision == "fp16" and dev.type == "cpu":
        raise ValueError("fp16 is for CUDA; use bf16 or fp32 on CPU")
    if compiled and packed:
        raise ValueError("the packed path runs prepacked oneDNN kernels: there is nothing to compile")
    # oneDNN packs bf16 weights only where it has bf16 kernels; elsewhere bf16 runs (emulated) unpacked.
    bf16_unpackable = dev.type == "cpu" and precision == "bf16" and not cpu_bf16_supported()
    if packed is None:
        packed = (
            dev.type == "cpu"
            and channels_last
            and onednn_available()
            and not compiled
            and not bf16_unpackable
        )
    elif packed and (dev.type != "cpu" or not onednn_available()):
        raise ValueError("the packed path needs a CPU torch with oneDNN (mkldnn)")
    elif packed and bf16_unpackable:
        raise ValueError(
            "oneDNN has no bf16 kernels on this CPU (or under its ISA cap) to pack bf16 weights for: "
            "use fp32, or bf16 unpacked (emulated, slower than fp32)"
        )
    fused = channels_last and (dev.type == "cuda" or bool(compiled))
    if compiled is None:
        compiled = fused
    return Runtime(dev, _DTYPES[precision], channels_last, packed, fused, compiled)


def _convert_weights(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Cast conv/norm/linear weights once; input normalisation constants stay fp32 (the forwards cast)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.Linear, nn.modules.batchnorm._BatchNorm)):
            m.to(dtype)
    return model


def prepare(model: nn.Module, rt: Runtime) -> nn.Module:
    """An encoder ready for `encode` under `rt`. The packed and fused paths work on a copy; the plain paths
    move (and convert) the model itself."""
    model = model.eval()
    if rt.packed:
        return pack_for_onednn(model, rt.dtype, group_width=rt.group_width, amx_kernel=rt.amx_kernel)
    if rt.fused:
        model = fold_batchnorm(model)  # in fp32, so the folded product is rounded once by the cast below
    model = model.to(rt.device)
    if rt.dtype != torch.float32:
        model = _convert_weights(model, rt.dtype)
    has_3d = any(isinstance(m, nn.Conv3d) for m in model.modules())
    if rt.channels_last:
        model = model.to(memory_format=torch.channels_last_3d if has_3d else torch.channels_last)
    else:
        model = model.to(memory_format=torch.contiguous_format)
    if rt.compiled:
        return CompiledEncoder(model, cuda_graphs=rt.device.type == "cuda")
    return model


def to_input(host: torch.Tensor, rt: Runtime) -> torch.Tensor:
    """uint8 frames/clips as the tensor the encoders take on rt's device (NCHW-contiguous on the naive path).

    The copy is asynchronous where `host` is pinned memory (see models/inflight.py)."""
    x = host.to(rt.device, non_blocking=True)
    if not rt.channels_last:
        # The naive path: a plain contiguous NCHW / NCTHW tensor, as a straightforward extractor makes.
        perm = (0, 3, 1, 2) if x.dim() == 4 else (0, 4, 1, 2, 3)
        x = x.permute(*perm).contiguous().permute(*np.argsort(perm).tolist())
    return x


def run_encoder(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """L2-normalised float32 features on x's device (no host copy, no synchronisation)."""
    with torch.inference_mode():
        out = model(x)
        return torch.nn.functional.normalize(out.float(), dim=1)


def encode(model: nn.Module, batch: np.ndarray | torch.Tensor, rt: Runtime) -> np.ndarray:
    """uint8 frames (N,H,W,3) or clips (N,16,H,W,3) -> L2-normalised float32 features (N, 2048); a numpy
    batch, or a tensor (frames decoded on the device: decode_device.py).

    A read-only batch (np.frombuffer over ffmpeg's bytes) is copied first: torch.from_numpy warns on one.
    """
    frames = (
        batch if isinstance(batch, torch.Tensor) else torch.from_numpy(np.require(batch, requirements="W"))
    )
    return run_encoder(model, to_input(frames, rt)).cpu().numpy()
