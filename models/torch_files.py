"""Reading a torch file someone handed us (weights, a checkpoint): one that is not one of the kind asked for
(empty, cut short, random bytes, another program's or stage's file) is `NotACheckpoint` naming the file
and why, not whatever torch.load's unpickler trips over first (EOFError, UnpicklingError, IndexError ...).
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from models.skeleton import with_weights

Net = TypeVar("Net", bound=nn.Module)
# torch.save's old format is a bare pickle: protocol 2 and up start with this opcode.
_PICKLE_PROTO = b"\x80"


class NotACheckpoint(ValueError):
    """A file given as weights or a checkpoint is not one of the kind expected: "FILE: not a KIND
    checkpoint (REASON)"."""

    def __init__(self, name: str, kind: str, reason: str) -> None:
        super().__init__(f"{name}: not a {kind} checkpoint ({reason})")
        self.name, self.kind, self.reason = name, kind, reason


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:240]}" if text else type(exc).__name__


def load_torch_file(
    source: str | os.PathLike[str] | bytes,
    kind: str,
    *,
    name: str | None = None,
    weights_only: bool = True,
    mmap: bool = False,
) -> Any:
    """torch.load on the CPU of a path or of a file's bytes; NotACheckpoint when it is not a torch file.

    `mmap` maps a zip-format file instead of reading it (a quick look at a large file's keys and shapes);
    old-format files cannot be mapped and are read whole."""
    label = name or (str(source) if not isinstance(source, bytes) else "<bytes>")
    if isinstance(source, bytes):
        size, head = len(source), source[:2]
        zipped = zipfile.is_zipfile(io.BytesIO(source))
        target: Any = io.BytesIO(source)
    else:
        size = os.path.getsize(source)
        with open(source, "rb") as handle:
            head = handle.read(2)
        zipped = zipfile.is_zipfile(source)
        target = source
    if size == 0:
        raise NotACheckpoint(label, kind, "empty file")
    if head == b"PK" and not zipped:
        raise NotACheckpoint(label, kind, f"a damaged zip file ({size} bytes): cut short?")
    if not zipped and head[:1] != _PICKLE_PROTO:
        raise NotACheckpoint(label, kind, "not a file torch.save wrote: neither its zip nor its old format")
    try:
        return torch.load(
            target,
            map_location="cpu",
            weights_only=weights_only,
            mmap=mmap and zipped and not isinstance(source, bytes),
        )
    except EOFError as exc:
        raise NotACheckpoint(label, kind, f"the file ends early ({size} bytes): cut short?") from exc
    except Exception as exc:  # noqa: BLE001 - torch.load raises many kinds for a file that is not its own
        if weights_only and "Weights only load failed" in str(exc):
            reason = "it holds Python objects besides tensors: not a plain state_dict"
        else:
            reason = f"torch.load cannot read it: {_short(exc)}"
        raise NotACheckpoint(label, kind, reason) from exc


def load_tensor_file(path: str, kind: str) -> np.ndarray:
    """The one tensor a torch file holds (`torch.save(rows)`, as the HowTo100M reference code stores a video's
    feature rows and reads them back with `th.load(path).float()`) as a numpy array; NotACheckpoint when the
    file is not a torch file or holds something else (a dict, a list)."""
    value = load_torch_file(path, kind)
    if not isinstance(value, torch.Tensor):
        raise NotACheckpoint(path, kind, f"it holds a {type(value).__name__}, not one tensor")
    value = value.detach()
    # numpy has no bfloat16; any other float type converts as it is
    return (value.float() if value.dtype == torch.bfloat16 else value).numpy()


def require_entries(state: Any, keys: Iterable[str], name: str, kind: str) -> dict[str, Any]:
    """`state` as a dict holding every one of `keys`, else NotACheckpoint naming what is missing."""
    wanted = list(keys)
    if not isinstance(state, dict):
        raise NotACheckpoint(name, kind, f"it holds a {type(state).__name__}, not a dict")
    missing = [k for k in wanted if k not in state]
    if missing:
        found = ", ".join(repr(k) for k in list(state)[:6]) or "nothing"
        raise NotACheckpoint(name, kind, f"no {', '.join(repr(k) for k in missing)} entry; it has {found}")
    return state


def weights_into(build: Callable[[], Net], state: Any, name: str, kind: str) -> Net:
    """`with_weights(build, state)`; a state that is not a map of tensors fitting the net is
    NotACheckpoint with the first mismatches."""
    if not isinstance(state, Mapping) or not state:
        raise NotACheckpoint(name, kind, "no state_dict of tensors in it")
    try:
        return with_weights(build, state)
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise NotACheckpoint(name, kind, _misfit(build, state) or _short(exc)) from exc


def _misfit(build: Callable[[], nn.Module], state: Mapping[str, Any]) -> str | None:
    """How the state's names differ from the net's, briefly; None when they are the same names."""
    with torch.device("meta"):
        # Old BatchNorm checkpoints lack num_batches_tracked: loading fills it in, so it is never missing.
        wanted = {k for k in build().state_dict() if not k.endswith("num_batches_tracked")}
    return _name_misfit(wanted, state)


def shape_misfit(net: nn.Module, state: Mapping[str, Any]) -> str | None:
    """How a state_dict differs from `net`'s (names, then tensor shapes), briefly; None when it fits."""
    own = net.state_dict()
    parts = [_name_misfit({k for k in own if not k.endswith("num_batches_tracked")}, state)]
    shapes = [
        f"{k} {tuple(v.shape)} in the file, {tuple(own[k].shape)} here"
        for k, v in state.items()
        if k in own and isinstance(v, torch.Tensor) and v.shape != own[k].shape
    ]
    if shapes:
        more = f", {len(shapes) - 2} more" if len(shapes) > 2 else ""
        parts.append(f"{len(shapes)} of another shape ({', '.join(shapes[:2])}{more})")
    return "; ".join(p for p in parts if p) or None


def _name_misfit(wanted: set[str], state: Mapping[str, Any]) -> str | None:
    missing = sorted(wanted - set(state))
    unexpected = sorted(str(k) for k in set(state) - wanted if not str(k).endswith("num_batches_tracked"))
    parts = []
    if missing:
        parts.append(
            f"{len(missing)} of the network's {len(wanted)} tensors missing ({', '.join(missing[:3])})"
        )
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({', '.join(unexpected[:3])})")
    return "; ".join(parts) or None
