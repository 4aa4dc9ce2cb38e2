"""Decoded rows (uint8 frames or clips) as either numpy arrays on the host or torch tensors already on the
encoders' device (the "pyav-gpu" decoder, tasks/features/decode_device.py): the few operations batching
needs, for both kinds. A batch that mixes them (one video re-decoded on the CPU after NVDEC failed) is
made on the device."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import torch

Rows: TypeAlias = np.ndarray | torch.Tensor


def concat_rows(parts: Sequence[Rows]) -> Rows:
    """The parts one after the other (a single part as it is)."""
    if len(parts) == 1:
        return parts[0]
    device = next((p.device for p in parts if isinstance(p, torch.Tensor)), None)
    if device is None:
        return np.concatenate(parts)
    return torch.cat([p if isinstance(p, torch.Tensor) else torch.from_numpy(p).to(device) for p in parts])


def pad_with_zeros(rows: Rows, total: int) -> Rows:
    """`rows` with zero rows appended up to `total` rows (as it is when it has that many already)."""
    missing = total - len(rows)
    if missing <= 0:
        return rows
    if isinstance(rows, torch.Tensor):
        return torch.cat([rows, rows.new_zeros((missing, *rows.shape[1:]))])
    return np.concatenate([rows, np.zeros((missing, *rows.shape[1:]), rows.dtype)])


def on_device(rows: Rows, device: torch.device) -> bool:
    """Whether `rows` are a tensor already on `device`. A CUDA device named without an index ("cuda", as
    the runtime names the default GPU) is the current one; a tensor's device always has its index, so
    plain equality would send every decoded-on-device batch through the host."""
    if not isinstance(rows, torch.Tensor) or rows.device.type != device.type:
        return False
    if device.type != "cuda" or device.index is not None:
        return rows.device == device
    return rows.device.index == torch.cuda.current_device()
