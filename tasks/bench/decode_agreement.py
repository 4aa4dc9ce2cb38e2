"""How close the frames kept on the GPU ("pyav-gpu", tasks/features/decode_device.py) are to PyAV's CPU
frames on this machine's own decoder: printed by `howto bench features --decoder pyav-gpu`, so a GPU run
shows NVDEC's frames against swscale's next to its speed, not only on the CPU tensors the tests use."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from tasks.features import decode_av, decode_device
from tasks.features.decode import DecodeReport, StreamSpec, VideoInfo


@dataclass(frozen=True)
class OutputAgreement:
    """One output: frames from each path, and the pixels' mean and 99th-percentile absolute difference
    (None when the frame counts differ)."""

    key: str
    cpu_frames: int
    device_frames: int
    mean_levels: float | None
    p99_levels: float | None


def decode_agreement(
    path: Path, specs: dict[str, StreamSpec], info: VideoInfo, device: torch.device, hwaccel: str | None
) -> tuple[list[OutputAgreement], str]:
    """Each output decoded both ways, the CPU's in the device path's order (RGB, then scaled: the 3D
    branch's YUV scaling differs from both by swscale's own chroma placement); and where the device path
    decoded ("cpu" or the hardware device)."""
    rgb_first = {key: replace(spec, rgb_first=True) for key, spec in specs.items()}
    cpu: dict[str, list[np.ndarray]] = {key: [] for key in specs}
    for key, chunk in decode_av.stream_outputs(str(path), rgb_first, info, 3600):
        cpu[key].append(chunk)
    ours: dict[str, list[np.ndarray]] = {key: [] for key in specs}
    report = DecodeReport()
    for key, frames in decode_device.device_outputs(
        str(path), specs, info, 3600, device, hwaccel, report=report
    ):
        ours[key].append(frames.cpu().numpy())
    rows = []
    for key in specs:
        a, b = np.concatenate(cpu[key]), np.concatenate(ours[key])
        if a.shape != b.shape:
            rows.append(OutputAgreement(key, len(a), len(b), None, None))
            continue
        diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
        rows.append(OutputAgreement(key, len(a), len(b), float(diff.mean()), float(np.percentile(diff, 99))))
    return rows, report.decoder


def agreement_line(
    path: Path, specs: dict[str, StreamSpec], info: VideoInfo, device: torch.device, hwaccel: str | None
) -> str:
    rows, ran = decode_agreement(path, specs, info, device, hwaccel)
    parts = []
    for row in rows:
        if row.mean_levels is None:
            parts.append(f"{row.key} {row.device_frames} frames vs {row.cpu_frames}: COUNTS DIFFER")
        else:
            parts.append(
                f"{row.key} {row.device_frames}/{row.cpu_frames} frames, |difference| mean "
                f"{row.mean_levels:.2f} levels, 99th percentile {row.p99_levels:.0f}"
            )
    return f"frames kept on {device} (decoded on {ran}) vs PyAV's CPU frames, RGB first: " + "; ".join(parts)
