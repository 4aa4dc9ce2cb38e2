"""Real ffmpeg on tiny generated files: no audio track, a corrupt stream and a silent track each become a
row status, the video after them is still done, and the kept track survives the video's deletion."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from models.audio_encoder import Cnn14, LogMelStats
from storage.layout import DataRoot
from storage.schemas import validate_table
from tasks.audio.config import ExtractAudioConfig
from tasks.audio.extract import extract_audio, loud_seconds, silence_reason
from tasks.audio.rows import audio_table
from tasks.audio.sources import keep_track, kept_outcome, track_dir
from tasks.audio.stage import audio_results
from tasks.audio.weights import AudioWeightsMissing, load_audio_encoder
from tasks.youtube.access import YoutubeAccess

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def _video(out: Path, audio: str | None, seconds: float = 2.5) -> Path:
    """A tiny H.264 mp4 with an AAC track from lavfi source `audio` (None: no audio stream)."""
    args = ["-f", "lavfi", "-i", f"testsrc=size=64x48:rate=4:duration={seconds}"]
    if audio is not None:
        args += ["-f", "lavfi", "-i", f"{audio}:duration={seconds}", "-c:a", "aac", "-shortest"]
    _ffmpeg(*args, "-c:v", "libx264", "-preset", "ultrafast", str(out))
    return out


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("audio-media")
    files = {
        "good": _video(d / "good.mp4", "sine=frequency=440:sample_rate=16000"),
        "mute": _video(d / "mute.mp4", None),
        "silent": _video(d / "silent.mp4", "anullsrc=r=16000:cl=mono"),
    }
    data = bytearray(files["good"].read_bytes())
    rng = random.Random(0)
    start = data.find(b"mdat") + 100
    for k in range(start, len(data) - 2000):  # scramble the payload, keep the index readable
        data[k] = rng.randrange(256)
    (d / "corrupt.mp4").write_bytes(bytes(data))
    files["corrupt"] = d / "corrupt.mp4"
    return files


def _extract(path: Path) -> object:
    return extract_audio("vid", str(path), LogMelStats(), silence_dbfs=-60.0, timeout_s=60.0)


def test_each_file_gets_its_status(media: dict[str, Path]) -> None:
    good = _extract(media["good"])
    assert good.status == "ok" and good.vectors.shape == (3, 192)  # 2.5 s -> 3 rows
    assert np.allclose(np.linalg.norm(good.vectors, axis=1), 1.0, atol=1e-5)
    assert good.t_end_ms.tolist()[-1] in range(2400, 2600)
    mute = _extract(media["mute"])
    assert mute.status == "no_audio" and len(mute.vectors) == 0
    corrupt = _extract(media["corrupt"])
    assert corrupt.status == "failed" and corrupt.error.startswith("corrupt_audio")
    silent = _extract(media["silent"])
    assert silent.status == "silent" and len(silent.vectors) == 3
    for result in (good, mute, corrupt, silent):  # every outcome is a valid table
        validate_table("audio_features", audio_table(result, "logmel_stats", False))


def test_kept_tracks_then_one_shard_pass_never_stops(media: dict[str, Path], tmp_path: Path) -> None:
    root = DataRoot.from_any(str(tmp_path / "root"))
    out = track_dir(root)
    names = ("mute", "corrupt", "silent", "good")  # the order the shard meets them
    ids = {name: f"{name}-audio"[:11].ljust(11, "0") for name in names}  # video ids, as a shard holds
    for name in names:
        copy = tmp_path / f"{name}.mp4"
        shutil.copy(media[name], copy)
        keep_track(copy, out, ids[name])
        copy.unlink()  # the features stage deletes the video; the track stays
    assert kept_outcome(out, ids["mute"])[0] == "no_audio"
    assert kept_outcome(out, ids["good"])[0] == "track"
    cfg = ExtractAudioConfig()
    videos = [{"video_id": ids[name], "url": None} for name in names]
    results, _ = audio_results(root, cfg, YoutubeAccess(), videos, LogMelStats())
    assert [r.status for r in results] == ["no_audio", "failed", "silent", "ok"]


def test_cnn14_encoder_random_and_refused(media: dict[str, Path]) -> None:
    with pytest.raises(AudioWeightsMissing, match="Cnn14_16k"):
        load_audio_encoder(ExtractAudioConfig(encoder="cnn14"))
    net, random_weights = load_audio_encoder(
        ExtractAudioConfig(encoder="cnn14", random_weights=True, width=4)
    )
    assert random_weights and isinstance(net, Cnn14)
    result = extract_audio("vid", str(media["good"]), net, silence_dbfs=-60.0, timeout_s=60.0)
    assert result.status == "ok" and result.vectors.shape == (3, 128)
    assert np.isfinite(result.vectors).all()


# A silent 10 s track with one 1 ms click at 0.8 (-2 dBFS), and a quiet narration-like tone: 220 Hz at peaks of
# -54 dBFS, in phrases (a 3 Hz syllable envelope, pauses every 2.5 s). ffmpeg's volumedetect puts them at
# mean_volume -42 dB and -63 dB: a mean level would call the click track sound and the narration silent.
CLICK = "aevalsrc='if(between(t\\,4\\,4.001)\\,0.8\\,0)':s=16000"
QUIET_SPEECH = "aevalsrc='0.002*sin(2*PI*220*t)*(0.6+0.4*sin(2*PI*3*t))*gt(sin(2*PI*0.4*t)\\,-0.3)':s=16000"


def test_a_click_does_not_make_a_silent_track_sound_nor_a_quiet_narration_silent(tmp_path: Path) -> None:
    click = _extract(_video(tmp_path / "click.mp4", CLICK, seconds=10))
    assert click.status == "silent" and len(click.vectors) >= 10  # was "ok": its loudest sample is -2 dBFS
    assert click.error is not None and "for 0.0" in click.error
    quiet = _extract(_video(tmp_path / "quiet.mp4", QUIET_SPEECH, seconds=10))
    assert quiet.status == "ok" and quiet.error is None


def test_loudness_is_read_per_frame_and_a_short_track_needs_half_its_length() -> None:
    rate = 16000
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(int(0.3 * rate)) / rate)).astype(np.float32)
    assert loud_seconds(tone, rate, -60.0) == pytest.approx(0.3, abs=0.01)
    assert silence_reason(tone, rate, -60.0) is None  # 0.3 s long, sound all through: not silent
    track = np.zeros(10 * rate, np.float32)
    track[rate : rate + 16] = 0.8  # a click
    assert silence_reason(track, rate, -60.0) is not None
    track[2 * rate : 2 * rate + rate // 2] = 0.01  # half a second at -40 dBFS
    assert silence_reason(track, rate, -60.0) is None
