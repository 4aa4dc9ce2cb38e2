"""Real ffmpeg on generated files: audio samples sit on the video's clock, so each per-second row covers
the same second as the frame rows it is joined with, whatever the container does with the track's start."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from models.audio_encoder import LogMelStats
from storage.layout import DataRoot
from tasks.audio.config import ExtractAudioConfig
from tasks.audio.decode import decode_mono, picture_clock_start_s
from tasks.audio.extract import extract_audio
from tasks.audio.sources import keep_track, kept_outcome, track_dir
from tasks.audio.stage import _one
from tasks.youtube.access import YoutubeAccess

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")

SR = 16_000
# A 1 kHz burst from 1.0 to 1.6 s of the track's own time, silence around it; 4 s long.
BURST = "aevalsrc=if(between(t\\,1\\,1.6)\\,0.5*sin(2*PI*1000*t)\\,0):s=48000:d=4"


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def _onset_s(wave: np.ndarray) -> float:
    return float(np.flatnonzero(np.abs(wave) > 0.05)[0]) / SR


def test_a_track_that_starts_after_the_video_keeps_its_offset(tmp_path: Path) -> None:
    """The audio stream starts 1 s into the file (an edit list in the mp4): its burst is at 2.0 s of the
    video's clock, in row 2, both read from the file and from the kept track (.m4a: AAC in mp4). Before, the
    offset was dropped and the burst read as 1.0 s: every row a second early against the frame rows."""
    video = tmp_path / "late.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=4:duration=5", "-itsoffset", "1", "-f", "lavfi",
            "-i", BURST, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(video))  # fmt: skip
    keep_track(video, tmp_path / "audio", "late0000000")
    kept = tmp_path / "audio" / "late0000000.m4a"
    for path in (video, kept):
        wave = decode_mono(str(path), SR, timeout_s=60.0)
        assert abs(_onset_s(wave) - 2.0) < 0.005, path.name
        assert wave.size / SR > 4.9  # 1 s of leading silence + the 4 s track
        assert np.abs(wave[: int(1.9 * SR)]).max() < 0.01  # the padding is silence
        result = extract_audio("late0000000", str(path), LogMelStats(), silence_dbfs=-60.0, timeout_s=60.0)
        assert result.t_start_ms[2] == 2000 and result.t_end_ms[-1] > 4900


def test_a_track_on_time_is_not_shifted(tmp_path: Path) -> None:
    """AAC in mp4 (priming cut by the edit list) and Opus in WebM (pre-skip, a negative first time
    stamp) both put the burst where it is: at 1.0 s."""
    for name, codec in (("aac.mp4", "aac"), ("opus.webm", "libopus")):
        path = tmp_path / name
        _ffmpeg("-f", "lavfi", "-i", BURST, "-c:a", codec, str(path))
        wave = decode_mono(str(path), SR, timeout_s=60.0)
        assert abs(_onset_s(wave) - 1.0) < 0.005, name
        assert abs(wave.size / SR - 4.0) < 0.03, name


def test_a_kept_track_starts_where_the_downloads_does(tmp_path: Path) -> None:
    """AAC from an mp4 and Opus from a WebM, each kept beside the data and read back: the burst at 1.0 s to
    the sample's tolerance. Before, every track went to .mka, whose muxer drops AAC's start delay: the
    kept AAC track's burst read 21 ms late (1024 priming samples at 48 kHz)."""
    for name, video_codec, codec in (("aac.mp4", "libx264", "aac"), ("opus.webm", "libvpx-vp9", "libopus")):
        video = tmp_path / name
        _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=4:duration=4", "-f", "lavfi", "-i", BURST,
                "-c:v", video_codec, "-c:a", codec, "-shortest", str(video))  # fmt: skip
        vid = name.split(".")[0].ljust(11, "0")
        keep_track(video, tmp_path / "audio", vid)
        outcome, kept, _ = kept_outcome(tmp_path / "audio", vid)
        assert outcome == "track" and kept is not None
        assert kept.suffix == (".m4a" if codec == "aac" else ".mka")
        wave = decode_mono(str(kept), SR, timeout_s=60.0)
        assert abs(_onset_s(wave) - 1.0) < 0.002, name


def test_a_file_that_starts_late_counts_from_its_start(tmp_path: Path) -> None:
    """Video and audio (PCM: no codec delay) both start 1.4 s into the file's time stamps, as an MPEG-TS or
    a cut stream does: the file's clock starts there (the frame rows' row 0 is its first picture), so the
    burst, 1 s into the track, reads 1.0 s from the file as from its kept track. Before, the decode kept
    the 1.4 s: the burst read 2.4 s from the file (every row 1.4 s late against the frame rows), 1.0 s from
    the track."""
    video = tmp_path / "cut.mkv"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=4:duration=4", "-f", "lavfi", "-i", BURST,
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "pcm_s16le", "-output_ts_offset", "1.4",
            str(video))  # fmt: skip
    assert picture_clock_start_s(str(video), timeout_s=60.0) == 1.4  # the case this test is about
    keep_track(video, tmp_path / "audio", "cut00000000")
    for path in (video, tmp_path / "audio" / "cut00000000.mka"):
        wave = decode_mono(str(path), SR, timeout_s=60.0)
        assert abs(_onset_s(wave) - 1.0) < 0.002, path.name
        assert abs(wave.size / SR - 4.0) < 0.01, path.name


def test_of_two_language_tracks_the_default_one_is_read(tmp_path: Path) -> None:
    """A German track first (300 Hz, not default) and an English one second (3 kHz, flagged default),
    as a multi-language download muxes them: the kept track and the decode both take the English one.
    Before, both took the first stream whatever its flags."""
    video = tmp_path / "two.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=4:duration=3",
            "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=48000:duration=3",
            "-f", "lavfi", "-i", "sine=frequency=3000:sample_rate=48000:duration=3",
            "-map", "0:v", "-map", "1:a", "-map", "2:a", "-c:v", "libx264", "-preset", "ultrafast",
            "-c:a", "aac", "-disposition:a:0", "0", "-disposition:a:1", "default",
            "-metadata:s:a:0", "language=deu", "-metadata:s:a:1", "language=eng", str(video))  # fmt: skip
    keep_track(video, tmp_path / "audio", "two00000000")
    for path in (video, tmp_path / "audio" / "two00000000.m4a"):
        wave = decode_mono(str(path), SR, timeout_s=60.0)
        spectrum = np.abs(np.fft.rfft(wave[SR : 2 * SR]))  # 1 Hz bins
        assert int(spectrum.argmax()) == 3000, path.name


def test_the_stage_reads_a_kept_track_without_an_ffprobe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audio stage reads most videos from their kept track (.m4a/.mka: audio alone, already counted from
    its video's start), where the probe for a picture's clock can only say 0: every video still paid an
    ffprobe before its decode (some 60 ms beside a 330 ms decode of 5 minutes). Now only a file that may
    hold a picture (a kept video, a fetched file) is probed; the rows are those of the decode alone."""
    video = tmp_path / "late.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=4:duration=5", "-itsoffset", "1", "-f", "lavfi",
            "-i", BURST, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(video))  # fmt: skip
    root = DataRoot.from_any(tmp_path / "data")
    keep_track(video, track_dir(root), "late0000000")
    calls = tmp_path / "ffprobe.calls"
    wrapper = tmp_path / "bin" / "ffprobe"  # the real ffprobe, each run written down first
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> "{calls}"\nexec "{shutil.which("ffprobe")}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}")
    result, _ = _one(
        root, ExtractAudioConfig(), YoutubeAccess(), {"video_id": "late0000000"}, LogMelStats(), None
    )
    assert result.status == "ok" and result.t_start_ms[2] == 2000 and result.t_end_ms[-1] > 4900
    assert not calls.exists(), calls.read_text()
    assert picture_clock_start_s(str(video), timeout_s=60.0) == 0.0 and calls.exists()  # the wrapper counts
