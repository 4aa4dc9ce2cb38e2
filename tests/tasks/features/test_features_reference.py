"""Acceptance: our streaming, batched, channels_last (bf16) path against a straightforward reference path."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from models.cpu_precision import cpu_bf16_supported
from models.encoders import encode, pick_runtime, prepare
from tasks.features.decode import SPEC_2D, SPEC_3D, probe
from tasks.features.extractor import Extractor, ExtractorSettings, VideoJob, VideoResult

FPS = 24  # the smooth test video's frame rate


def _ours(encoders: dict[str, torch.nn.Module], path: Path, precision: str) -> VideoResult:
    rt = pick_runtime("cpu", precision, channels_last=True)
    nets = {m: prepare(n, rt) for m, n in encoders.items()}
    extractor = Extractor(
        nets, {"resnet152": SPEC_2D, "resnext101": SPEC_3D}, rt, ExtractorSettings(batch_2d=3, batch_3d=4)
    )
    [result] = list(extractor.run([VideoJob("v", str(path))]))
    assert result.status == "ok", result.error
    return result


def _decode_all(path: Path, vf: str | None = None) -> np.ndarray:
    info = probe(str(path))
    cmd = [
        "ffmpeg",
        "-v",
        "error",
        "-i",
        str(path),
        *(["-vf", vf] if vf else []),
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-",
    ]
    raw = subprocess.run(cmd, capture_output=True, check=True).stdout
    if vf is None:
        return np.frombuffer(raw, np.uint8).reshape(-1, info.height, info.width, 3)
    return np.frombuffer(raw, np.uint8).reshape(-1, 112, 112, 3)


def _reference_2d(net: torch.nn.Module, path: Path, seconds: int) -> np.ndarray:
    """Every frame at full rate in RGB; the frame on screen at t = 0, 1, 2 ... s; resize; fp32 NCHW."""
    frames = _decode_all(path)
    picked = np.ascontiguousarray(frames[[t * FPS for t in range(seconds)]])
    n, h, w, _ = picked.shape
    # Resize with ffmpeg's scaler (bicubic), fed the picked RGB frames.
    cmd = [
        "ffmpeg",
        "-v",
        "error",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{w}x{h}",
        "-i",
        "-",
        "-vf",
        f"scale={int(w * 224 / h)}:224",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-",
    ]
    raw = subprocess.run(cmd, input=picked.tobytes(), capture_output=True, check=True).stdout
    batch = np.frombuffer(raw, np.uint8).reshape(n, 224, int(w * 224 / h), 3)
    rt = pick_runtime("cpu", "fp32", channels_last=False)
    return encode(prepare(net, rt), batch, rt)


def _reference_3d(net: torch.nn.Module, path: Path) -> tuple[np.ndarray, int]:
    """The reference extractor: whole video to memory at 24 fps, zero-pad to 16, fp32 NCTHW."""
    info = probe(str(path))
    w = int(info.width * 112 / info.height)
    frames = _decode_all(path, f"fps=24,scale={w}:112,crop=112:112:{int((w - 112) / 2)}:0")
    n = len(frames)
    padded = np.concatenate([frames, np.zeros((-n % 16, 112, 112, 3), np.uint8)]).reshape(-1, 16, 112, 112, 3)
    rt = pick_runtime("cpu", "fp32", channels_last=False)
    return encode(prepare(net, rt), padded, rt), n


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def reference(encoders: dict[str, torch.nn.Module], media: dict[str, Path]) -> dict[str, object]:
    seconds = math.ceil(probe(str(media["smooth"])).duration_s)
    vectors_3d, frames_3d = _reference_3d(encoders["resnext101"], media["smooth"])
    return {
        "2d": _reference_2d(encoders["resnet152"], media["smooth"], seconds),
        "3d": vectors_3d,
        "frames_3d": frames_3d,
        "seconds": seconds,
    }


@pytest.mark.parametrize(("precision", "min_cosine"), [("fp32", 0.999), ("bf16", 0.99)])
def test_matches_reference(
    encoders: dict[str, torch.nn.Module],
    media: dict[str, Path],
    reference: dict[str, object],
    precision: str,
    min_cosine: float,
) -> None:
    # bf16 is checked wherever it is native, also where "auto" takes fp32 (bf16 slower there): it can be asked for.
    if precision == "bf16" and not cpu_bf16_supported():
        pytest.skip("this CPU has no native bf16")
    ours = _ours(encoders, media["smooth"], precision)
    rows_2d, rows_3d = ours.rows["resnet152"], ours.rows["resnext101"]
    # Same frame times: one row per second from t=0, and ceil(T/16) 3D rows.
    assert rows_2d.t_start_ms.tolist() == [1000 * t for t in range(int(reference["seconds"]))]
    assert len(rows_3d.vectors) == math.ceil(int(reference["frames_3d"]) / 16) == len(reference["3d"])
    aligned = _cosines(rows_2d.vectors, reference["2d"])
    assert aligned.min() >= min_cosine
    assert _cosines(rows_3d.vectors, reference["3d"]).min() >= min_cosine
    # The check has teeth: a frame one second off matches the reference worse than every aligned one.
    assert _cosines(rows_2d.vectors[1:], reference["2d"][:-1]).max() < aligned.min()
