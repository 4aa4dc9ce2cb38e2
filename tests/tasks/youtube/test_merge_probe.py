"""The download's mp4-or-Matroska choice (merge_probe.mp4_merge_works) keeps only verdicts of the ffmpeg: a merge
that failed for another reason (a full temp disk) is asked again, not kept for the life of the process."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from tasks.youtube.merge_probe import CannotProbe, mp4_merge_works, vp9_mp4_merge_refusal
from tests.old_ffmpeg import ffmpeg3_on_path, ffmpeg_on_path

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")


def _refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "refuses VP9 + AAC in mp4" in r.getMessage()]


def test_a_merge_failing_into_every_container_is_no_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A full temp disk fails the probe's merge into mp4 and Matroska alike: no refusal of mp4. Before, it was
    taken for one and kept: every later VP9 + AAC download of the process went into Matroska, 21 ms late,
    with a warning blaming the ffmpeg, after the disk had room again."""
    full = tmp_path / "disk-full"
    full.touch()
    monkeypatch.setenv("PATH", ffmpeg_on_path(tmp_path / "bin", full_while=full))
    with pytest.raises(CannotProbe, match="neither mp4 nor Matroska.*No space left on device"):
        vp9_mp4_merge_refusal(shutil.which("ffmpeg") or "")
    with caplog.at_level(logging.WARNING):
        assert mp4_merge_works()
        full.unlink()
        assert mp4_merge_works()
    assert _refusals(caplog) == []


def test_an_old_ffmpeg_is_found_out_once_the_disk_has_room_and_then_not_asked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """FFmpeg 3.x probed while the temp disk is full: no verdict yet (mp4, as before the probe), so its refusal
    is found at the next download's probe instead of never; that verdict is then kept (ffmpeg not run again)."""
    full = tmp_path / "disk-full"
    full.touch()
    monkeypatch.setenv("PATH", ffmpeg3_on_path(tmp_path / "bin", full_while=full))
    with caplog.at_level(logging.WARNING):
        assert mp4_merge_works()
        full.unlink()
        assert not mp4_merge_works()
        (tmp_path / "bin" / "ffmpeg").write_text("#!/bin/sh\nexit 1\n")  # asked again, it would say nothing
        assert not mp4_merge_works()
    assert len(_refusals(caplog)) == 1
