"""A picture far wider than tall (or taller than wide) is a failed row saying why, before any frame is
decoded: 2D frames keep their whole scaled size, so a 2000x2 file made 224x224000 frames, 150 MB each."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

from tasks.features.extractor import ExtractorSettings, VideoJob
from tests.tasks.features.test_features_extractor import small_extractor


def _video(path: Path, size: str) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=24:duration=2",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", "-y", str(path)],
        check=True,
    )  # fmt: skip
    return path


def test_a_thin_picture_fails_before_decoding_and_a_wide_one_does_not(
    encoders: dict[str, torch.nn.Module], tmp_path: Path
) -> None:
    extractor = small_extractor(encoders, ExtractorSettings(batch_2d=4, batch_3d=4, decode_workers=1))
    jobs = [
        VideoJob("thin", str(_video(tmp_path / "thin.mp4", "1280x16"))),  # 80:1
        VideoJob("cinema", str(_video(tmp_path / "cinema.mp4", "512x144"))),  # 32:9, YouTube's widest
    ]
    results = {r.video_id: r for r in extractor.run(jobs)}
    assert results["thin"].status == "failed"
    assert "picture 1280x16 is over 16:1" in (results["thin"].error or "")
    assert not results["thin"].rows or all(len(r.vectors) == 0 for r in results["thin"].rows.values())
    assert results["cinema"].status == "ok" and len(results["cinema"].rows["resnet152"].vectors) == 2


@pytest.mark.parametrize(("width", "height"), [(16, 1280), (17, 272)])
def test_the_limit_holds_both_ways_and_lets_16_to_1_through(width: int, height: int) -> None:
    from tasks.features.decode import DecodeError, VideoInfo, check_frame_size

    info = VideoInfo(width, height, 2.0)
    if height > 16 * width:
        with pytest.raises(DecodeError):
            check_frame_size(info)
    else:
        check_frame_size(info)
