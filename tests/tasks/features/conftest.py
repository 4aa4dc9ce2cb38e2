"""Session fixtures of the feature tests: torch threads and generated media."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from features_media import encode_frames, index_frames, smooth_frames

from tests.cpu import worker_threads


@pytest.fixture(scope="session", autouse=True)
def _torch_threads() -> None:
    torch.set_num_threads(worker_threads())


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Index videos at 25 and 29.97 fps, a smooth 3.5 s video, a corrupt file and a truncated one."""
    out = tmp_path_factory.mktemp("media")
    smooth = encode_frames(out / "smooth.mp4", smooth_frames(84), "24", faststart=True)
    data = smooth.read_bytes()
    (out / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (out / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    return {
        "index25": encode_frames(out / "index25.mp4", index_frames(260), "25"),
        "index2997": encode_frames(out / "index2997.mp4", index_frames(155), "30000/1001"),
        "smooth": smooth,
        "truncated": out / "truncated.mp4",
        "corrupt": out / "corrupt.mp4",
    }


@pytest.fixture(scope="session")
def encoders() -> dict[str, torch.nn.Module]:
    """The real ResNet-152 and ResNeXt-101 3D with seeded random weights and calibrated BatchNorm."""
    from models.calibration import damp_residuals, recalibrate_batchnorm
    from models.resnet2d import build_resnet152
    from models.resnext3d import build_resnext101
    from tasks.features.weights import calibration_clips, calibration_images

    torch.manual_seed(0)
    net2d = recalibrate_batchnorm(
        damp_residuals(build_resnet152(None)), torch.from_numpy(calibration_images(8, 96, 96, 0)).split(8)
    )
    net3d = recalibrate_batchnorm(
        damp_residuals(build_resnext101(None)), torch.from_numpy(calibration_clips(4, 48, 0)).split(4)
    )
    return {"resnet152": net2d, "resnext101": net3d}
