"""The rows' clock on files as downloads come: a video merged with an audio stream that starts before it
(Opus's pre-roll, as yt-dlp merges YouTube's VP9 and Opus into a webm, or H.264 and Opus into an mkv) or
after which the video starts (an edit list). Row k is the picture on screen at k s of the file, on every
decoder."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from features_media import H, W, decoded_outputs, encode_frames, index_frames, read_index

DECODERS = ("ffmpeg", "pyav")


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-threads", "1", *args], check=True)


def _start_s(path: Path) -> float:
    """The container's start time as ffprobe reads it."""
    cmd = ["ffprobe", "-v", "error", "-show_entries", "format=start_time", "-of", "csv=p=0", str(path)]
    return float(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def _merge(video: Path, audio: Path, out: Path, *video_options: str) -> Path:
    """yt-dlp's merge of a video-only and an audio-only download: both streams copied."""
    streams = ["-map", "0:v:0", "-map", "1:a:0"]
    _ffmpeg(*video_options, "-i", str(video), "-i", str(audio), "-c", "copy", *streams, str(out))
    return out


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("clock")
    frames = index_frames(100)  # 4 s at 25 fps: frame n shows n
    h264 = encode_frames(out / "video.mp4", frames, "25")
    vp9 = out / "video.webm"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}", "-r", "25",
         "-i", "-", "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-crf", "30", "-b:v", "0",
         "-pix_fmt", "yuv420p", "-threads", "1", str(vp9)],
        input=frames.tobytes(), check=True,
    )  # fmt: skip
    opus, aac = out / "audio.webm", out / "audio.m4a"
    _ffmpeg("-f", "lavfi", "-i", "sine=duration=4", "-c:a", "libopus", str(opus))
    _ffmpeg("-f", "lavfi", "-i", "sine=duration=4", "-c:a", "aac", str(aac))
    return {
        "h264": h264,
        "vp9_opus_webm": _merge(vp9, opus, out / "merged.webm"),
        "h264_opus_mkv": _merge(h264, opus, out / "merged.mkv"),
        # The video starts 0.5 s into the file (an mp4 edit list), its audio at 0.
        "late_video_mp4": _merge(h264, aac, out / "late.mp4", "-itsoffset", "0.5"),
    }


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("name", ["vp9_opus_webm", "h264_opus_mkv"])
def test_an_opus_pre_roll_does_not_move_the_rows(downloads: dict[str, Path], name: str, decoder: str) -> None:
    """The file starts at -7 ms (Opus's codec delay); the video at 0. Counted from -7 ms, the command line's
    row 0 showed the picture at 1 s (round=up put the first frame, at +7 ms, in the slot of 1 s), every
    later row one frame early, and a fifth row came from nowhere."""
    assert _start_s(downloads[name]) < 0  # the case this test is about, as ffprobe reads it
    got = decoded_outputs(downloads[name], decoder)
    alone = decoded_outputs(downloads["h264"], "ffmpeg")
    assert [read_index(f) for f in got["2d"]] == [0, 25, 50, 75]
    assert len(got["3d"]) == len(alone["3d"]) == 96


@pytest.mark.parametrize("decoder", DECODERS)
def test_a_video_that_starts_late_keeps_the_files_clock(downloads: dict[str, Path], decoder: str) -> None:
    """Frames start at 0.5 s: row 0 is the first picture (shown from 0.5 s; nothing earlier), row k the one
    on screen at k s of the file (video frame 25 k - 13, its frame at k - 0.02 s). PyAV's rows counted from
    the first frame instead (row k showed k + 1 s, and its 3D frames sat 0.5 s early), the command line's
    from there too, before it padded its output back to 0."""
    got = decoded_outputs(downloads["late_video_mp4"], decoder)
    assert [read_index(f) for f in got["2d"]] == [0, 12, 37, 62, 87]
    assert len(got["3d"]) == 108  # 4.5 s at 24 fps: 12 copies of the first frame, then the video's 96
    assert np.array_equal(got["3d"][0], got["3d"][12])


@pytest.mark.parametrize("decoder", DECODERS)
def test_the_last_row_of_a_video_that_starts_late_ends_where_its_picture_ends(
    encoders: dict[str, torch.nn.Module], downloads: dict[str, Path], decoder: str
) -> None:
    """The picture runs from 0.5 s to 4.5 s of the file. The last 2D row (4 s on) ended at the stream's
    duration, 4 s, pushed to 4001 ms: a 1 ms row, and the hours of features (the longest row end) 0.5 s
    short for a 2D-only run. Both models' rows now end at 4.5 s, as the file does."""
    from tasks.features.extractor import ExtractorSettings, VideoJob
    from tasks.features.rows import result_table
    from tests.tasks.features.test_features_extractor import small_extractor

    settings = ExtractorSettings(batch_2d=8, batch_3d=8, decode_workers=1, decoder=decoder)
    [result] = small_extractor(encoders, settings).run([VideoJob("late", str(downloads["late_video_mp4"]))])
    assert result.status == "ok", result.error
    rows_2d, rows_3d = result.rows["resnet152"], result.rows["resnext101"]
    assert rows_2d.t_start_ms.tolist() == [0, 1000, 2000, 3000, 4000]
    assert rows_2d.t_end_ms.tolist() == [1000, 2000, 3000, 4000, 4500]
    assert rows_3d.t_end_ms[-1] == 4500  # 108 frames at 24 fps
    table = result_table(result, ["resnet152"], {}).to_pydict()
    assert max(table["t_end_ms"]) == 4500  # what `howto stats` sums as the video's hours of features


@pytest.mark.parametrize("name", ["vp9_opus_webm", "h264_opus_mkv", "late_video_mp4"])
def test_both_decoders_give_the_same_rows(downloads: dict[str, Path], name: str) -> None:
    cli, av = decoded_outputs(downloads[name], "ffmpeg"), decoded_outputs(downloads[name], "pyav")
    for key in cli:
        assert cli[key].shape == av[key].shape, key
        assert np.array_equal(cli[key], av[key]), key


@pytest.mark.parametrize("name", ["vp9_opus_webm", "h264_opus_mkv", "late_video_mp4"])
def test_the_frames_kept_on_the_device_are_picked_on_the_same_clock(
    downloads: dict[str, Path], name: str
) -> None:
    """The pyav-gpu decoder's own fps pick (tasks/features/fps_pick.py, run here on the CPU): the same
    pictures in the same rows as the filter's."""
    import torch

    from tasks.features import decode_av, decode_device
    from tasks.features.decode import SPEC_2D, SPEC_3D

    path = str(downloads[name])
    specs = {"2d": SPEC_2D, "3d": SPEC_3D}
    got: dict[str, list[np.ndarray]] = {key: [] for key in specs}
    info = decode_av.probe(path)
    for key, chunk in decode_device.device_outputs(path, specs, info, 60, torch.device("cpu")):
        got[key].append(chunk.numpy())
    want = decoded_outputs(downloads[name], "pyav")
    assert [read_index(f) for f in np.concatenate(got["2d"])] == [read_index(f) for f in want["2d"]]
    assert sum(len(c) for c in got["3d"]) == len(want["3d"])
