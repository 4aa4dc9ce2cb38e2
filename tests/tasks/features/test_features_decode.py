"""Streaming decode: frame times, 3D clip counts, corrupt/truncated files and hung decoders."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from features_media import (
    FAILED_STDERR,
    REFUSED_STDERR,
    encode_frames,
    fake_nvdec_path,
    index_frames,
    read_index,
    smooth_frames,
    with_display_rotation,
)

from tasks.features.decode import (
    SPEC_2D,
    SPEC_3D,
    DecodeError,
    DecodeReport,
    DecodeTimeout,
    VideoInfo,
    as_clips,
    decode_outputs,
    display_size,
    hwaccel_available,
    hwaccel_failures,
    probe,
    split_hwaccel_refusals,
    stream_frames,
    stream_outputs,
)


def _frames(path: Path, spec=SPEC_2D) -> np.ndarray:
    info = probe(str(path))
    return np.concatenate(list(stream_frames(str(path), spec, info, timeout_s=60)))


@pytest.mark.parametrize(("name", "rate", "n"), [("index25", 25, 260), ("index2997", 30000 / 1001, 155)])
def test_2d_frame_k_is_the_frame_on_screen_at_k_seconds(
    media: dict[str, Path], name: str, rate: float, n: int
) -> None:
    frames = _frames(media[name])
    duration = n / rate
    # The reference rule: row k shows the last frame whose timestamp is <= k s.
    expected = [math.floor(k * rate + 1e-6) for k in range(math.ceil(duration))]
    assert [read_index(f) for f in frames] == expected
    assert frames.shape[1:] == (224, 298, 3)  # short side 224, long side truncated as the reference does


def test_3d_rows_are_ceil_frames_over_16_with_zero_padding(media: dict[str, Path]) -> None:
    path = str(media["index2997"])
    info = probe(path)
    everything = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", path, "-vf", "fps=24", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
    ).stdout
    reference_frames = len(everything) // (info.width * info.height * 3)
    chunks = list(stream_frames(path, SPEC_3D, info, timeout_s=60))
    clips = np.concatenate([as_clips(c) for c in chunks])  # as the extractor cuts them
    assert sum(len(c) for c in chunks) == reference_frames
    assert len(clips) == math.ceil(reference_frames / 16)
    assert clips.shape[1:] == (16, 112, 112, 3)
    tail = reference_frames % 16
    if tail:
        assert not clips[-1, tail:].any() and clips[-1, :tail].any()


def test_corrupt_file_raises_with_ffmpeg_message(media: dict[str, Path]) -> None:
    with pytest.raises(DecodeError, match="moov atom not found|Invalid data"):
        probe(str(media["corrupt"]))


def test_truncated_file_raises_with_ffmpeg_message(media: dict[str, Path]) -> None:
    path = str(media["truncated"])
    with pytest.raises(DecodeError) as caught:
        info = probe(path)
        list(stream_frames(path, SPEC_3D, info, timeout_s=60))
    assert str(caught.value)  # ffmpeg's own words, not an empty message


def test_a_relative_file_named_like_an_option_is_read_as_a_file(
    media: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`howto features extract -- -clip.mp4`: ffprobe took the bare name for an option ("Missing argument
    for option 'clip.mp4'"), and `-report` would have run as one (a log file written in the folder)."""
    shutil.copy(media["smooth"], tmp_path / "-clip.mp4")
    shutil.copy(media["smooth"], tmp_path / "-report")
    monkeypatch.chdir(tmp_path)
    assert probe("-clip.mp4") == probe(str(media["smooth"]))
    assert probe("-report") == probe(str(media["smooth"]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["-clip.mp4", "-report"]
    frames = np.concatenate(list(stream_frames("-clip.mp4", SPEC_2D, probe("-clip.mp4"), timeout_s=60)))
    assert len(frames) == 4


def test_hung_decoder_is_killed_after_its_budget(tmp_path: Path) -> None:
    fifo = tmp_path / "never-written.mp4"
    os.mkfifo(fifo)  # ffmpeg blocks opening it forever: a stand-in for a stalled network mount
    info = VideoInfo(width=160, height=120, duration_s=1.0)
    with pytest.raises(DecodeTimeout, match="timeout"):
        list(stream_frames(str(fifo), SPEC_2D, info, timeout_s=0.5))


def test_memory_stays_bounded_by_one_chunk(media: dict[str, Path]) -> None:
    info = probe(str(media["index25"]))
    spec = replace(SPEC_3D, chunk=16)
    sizes = {len(c) for c in stream_frames(str(media["index25"]), spec, info, timeout_s=60)}
    assert max(sizes) <= 16


def test_hardware_decoder_that_cannot_start_falls_back_to_the_cpu(media: dict[str, Path]) -> None:
    """Asked for NVDEC on a machine without it, decoding goes on on the CPU with the same frames."""
    if hwaccel_available("cuda"):
        pytest.skip("this machine has a CUDA decoder: the fallback is not reached")
    assert not hwaccel_available("no-such-device")
    path = str(media["index25"])
    info = probe(path)
    software = np.concatenate(list(stream_frames(path, SPEC_2D, info, timeout_s=60)))
    specs = {"2d": SPEC_2D}
    report = DecodeReport()
    chunks = decode_outputs(path, specs, info, timeout_s=60, hwaccel="cuda", report=report)
    fallback = np.concatenate([c for _, c in chunks])
    np.testing.assert_array_equal(fallback, software)
    assert report.decoder == "cpu" and report.fallback  # and ffmpeg's reason is kept
    with pytest.raises(DecodeError):
        list(decode_outputs(str(media["corrupt"]), specs, info, timeout_s=60, hwaccel="cuda"))


@pytest.mark.parametrize("name", ["index25", "smooth"])
def test_one_decode_for_both_models_gives_each_models_own_frames(media: dict[str, Path], name: str) -> None:
    """The 2D and 3D outputs split from one decode are bit-identical to decoding once per model."""
    path = str(media[name])
    info = probe(path)
    specs = {"2d": SPEC_2D, "3d": replace(SPEC_3D, chunk=32)}
    got: dict[str, list[np.ndarray]] = {"2d": [], "3d": []}
    for key, chunk in stream_outputs(path, specs, info, timeout_s=60):
        got[key].append(chunk)
    for key, spec in specs.items():
        alone = np.concatenate(list(stream_frames(path, spec, info, timeout_s=60)))
        np.testing.assert_array_equal(np.concatenate(got[key]), alone)
        assert all(len(c) == spec.chunk for c in got[key][:-1])  # whole chunks but the last


def test_one_decode_reports_a_truncated_file_and_a_hung_one(media: dict[str, Path], tmp_path: Path) -> None:
    specs = {"2d": SPEC_2D, "3d": SPEC_3D}
    path = str(media["truncated"])
    with pytest.raises(DecodeError) as caught:
        list(stream_outputs(path, specs, probe(path), timeout_s=60))
    assert str(caught.value)
    fifo = tmp_path / "never-written.mp4"
    os.mkfifo(fifo)
    with pytest.raises(DecodeTimeout, match="timeout"):
        list(
            stream_outputs(str(fifo), specs, VideoInfo(width=160, height=120, duration_s=1.0), timeout_s=0.5)
        )


def _run_graph(args: list[str], specs: dict[str, Any], tmp_path: Path, tag: str) -> dict[str, bytes]:
    """Run an ffmpeg command built by _command, each output's fd a file; the bytes of each output."""
    files = {key: open(tmp_path / f"{tag}-{key}.raw", "wb") for key in specs}  # noqa: SIM115
    try:
        fds = {key: f.fileno() for key, f in files.items()}
        for key, fd in fds.items():
            args = [a.replace(f"pipe:{{{key}}}", f"pipe:{fd}") for a in args]
        subprocess.run(["ffmpeg", *args], check=True, pass_fds=tuple(fds.values()), capture_output=True)
    finally:
        for f in files.values():
            f.close()
    return {key: (tmp_path / f"{tag}-{key}.raw").read_bytes() for key in specs}


def test_nvdec_frames_are_put_back_in_the_source_format_before_the_filters(
    media: dict[str, Path], tmp_path: Path
) -> None:
    """NVDEC hands frames over as NV12; a graph built for it converts them back to the source's yuv420p
    first, so the 2D and 3D pixels are the CPU decoder's. Simulated here: the hwaccel command run on the CPU
    with a leading format=nv12 standing in for what NVDEC outputs."""
    from tasks.features.decode import _command, output_pix_fmt

    path = str(media["smooth"])
    info = probe(path)
    assert info.pix_fmt == "yuv420p"
    specs = {"2d": SPEC_2D, "3d": SPEC_3D}
    marks = {"2d": "{2d}", "3d": "{3d}"}  # placeholders, replaced by the files' descriptors

    pix_fmts = {key: output_pix_fmt(spec, info) for key, spec in specs.items()}

    def command(hwaccel: str | None) -> list[str]:
        args = _command(path, specs, info, marks, pix_fmts, 1, hwaccel)  # type: ignore[arg-type]
        if hwaccel:  # run it on the CPU: drop the -hwaccel options, keep the graph built for them
            i = args.index("-hwaccel")
            args = args[:i] + args[i + 2 :]
        return args[1:] if args[0] == "ffmpeg" else args

    cpu = _run_graph(command(None), specs, tmp_path, "cpu")
    graph_at = command("cuda").index("-filter_complex") + 1
    restored = command("cuda")
    assert "format=yuv420p" in restored[graph_at]
    restored[graph_at] = restored[graph_at].replace("format=yuv420p", "format=nv12,format=yuv420p", 1)
    as_nvdec = _run_graph(restored, specs, tmp_path, "nvdec")
    assert as_nvdec == cpu
    # Without putting the frames back, NV12 straight to RGB gives other 2D pixels: the step matters.
    unrestored = command("cuda")
    unrestored[graph_at] = unrestored[graph_at].replace("format=yuv420p", "format=nv12", 1)
    assert _run_graph(unrestored, specs, tmp_path, "raw-nv12")["2d"] != cpu["2d"]


def _noisy_video(path: Path, size: str) -> Path:
    """A yuv420p H.264 clip with strong per-pixel chroma noise: where two chroma paths differ, it shows."""
    source = f"testsrc2=size={size}:rate=30:duration=1,format=yuv420p,noise=c1s=60:c2s=60:all_seed=3:allf=t"
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source, "-c:v", "libx264", "-preset", "ultrafast"]  # fmt: skip
    subprocess.run([*cmd, "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


@pytest.mark.parametrize("size", ["640x360", "320x240", "256x144"])
def test_planar_output_carries_the_packed_rgb_pixels(
    tmp_path: Path, size: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 2D branch (scaled in RGB, down from 360p, up from 144p) and 16:9 and 4:3 videos' 3D branch (scaled
    to an odd width: 199, 149) come out of ffmpeg as planar gbrp, cheaper than packed rgb24, and the frames
    handed on are the very bytes rgb24 gives."""
    from tasks.features import decode

    path = str(_noisy_video(tmp_path / f"noisy-{size}.mp4", size))
    info = probe(path)
    specs = {"2d": SPEC_2D, "3d": replace(SPEC_3D, chunk=32)}
    assert decode.output_pix_fmt(SPEC_3D, info) == decode.output_pix_fmt(SPEC_2D, info) == "gbrp"

    def outputs() -> dict[str, np.ndarray]:
        got: dict[str, list[np.ndarray]] = {"2d": [], "3d": []}
        for key, chunk in stream_outputs(path, specs, info, timeout_s=60):
            assert chunk.flags.writeable and chunk.flags.c_contiguous
            got[key].append(chunk)
        return {key: np.concatenate(chunks) for key, chunks in got.items()}

    planar = outputs()
    monkeypatch.setattr(decode, "output_pix_fmt", lambda spec, info: "rgb24")
    packed = outputs()
    assert planar["3d"].shape == packed["3d"].shape == (24, 112, 112, 3)
    for key in specs:
        np.testing.assert_array_equal(planar[key], packed[key])


def test_even_widths_other_sources_and_a_disagreeing_ffmpeg_keep_packed_rgb(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Scaled in YUV to an even width, packed rgb24 takes another chroma path (the pixels would differ),
    other source formats go untested, and an ffmpeg whose two writers disagree is never trusted: rgb24."""
    from tasks.features import decode

    # This machine's ffmpeg: the planar writer is exact for both kinds of branch...
    assert decode.planar_rgb_exact("yuv_odd_width") and decode.planar_rgb_exact("rgb_scaled")
    # ...and the check can tell: at an even width the two writers disagree, and it says so.
    even = {"even": (("fps=24,scale=198:112,crop=112:112:43:0", 112, 112),)}
    monkeypatch.setattr(decode, "PLANAR_CHECKS", even)
    assert not decode.planar_rgb_exact("even")
    wide = VideoInfo(640, 360, 10.0, "yuv420p")
    assert decode.output_pix_fmt(SPEC_3D, wide) == decode.output_pix_fmt(SPEC_2D, wide) == "gbrp"
    assert decode.output_pix_fmt(SPEC_2D, VideoInfo(640, 360, 10.0, "yuv420p10le")) == "gbrp"  # RGB by then
    assert decode.output_pix_fmt(SPEC_3D, VideoInfo(360, 640, 10.0, "yuv420p")) == "rgb24"  # 112 wide
    assert decode.output_pix_fmt(SPEC_3D, VideoInfo(426, 240, 10.0, "yuv420p")) == "rgb24"  # 198 wide
    assert decode.output_pix_fmt(SPEC_3D, VideoInfo(640, 360, 10.0, "yuv420p10le")) == "rgb24"
    assert decode.output_pix_fmt(SPEC_3D, VideoInfo(640, 360, 10.0, None)) == "rgb24"
    monkeypatch.setattr(decode, "planar_rgb_exact", lambda kind: False)
    assert decode.output_pix_fmt(SPEC_3D, wide) == decode.output_pix_fmt(SPEC_2D, wide) == "rgb24"


def test_refusal_lines_are_told_apart_from_the_files_own_errors() -> None:
    refusals, rest = split_hwaccel_refusals(REFUSED_STDERR)
    assert refusals == [
        "[h264 @ 0x55d1c2f4a8c0] Hardware is lacking required capabilities",
        "[h264 @ 0x55d1c2f4a8c0] Failed setup for format cuda: hwaccel initialisation returned error.",
    ]
    assert rest.strip() == "[h264 @ 0x55d1c2f4a8c0] error while decoding MB 12 7, bytestream -7"
    assert split_hwaccel_refusals("") == ([], "")


@pytest.mark.parametrize("refuse", [True, False])
def test_the_report_names_the_decoder_that_really_ran(
    media: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refuse: bool
) -> None:
    """ffmpeg falls back to software silently (exit 0) when NVDEC refuses a stream: the video still
    extracts, with every frame, and is reported as decoded on the CPU, with ffmpeg's reason."""
    path = str(media["index25"])
    info = probe(path)
    specs = {"2d": SPEC_2D}
    software = np.concatenate([c for _, c in stream_outputs(path, specs, info, timeout_s=60)])
    monkeypatch.setenv("PATH", fake_nvdec_path(tmp_path, refuse))
    report = DecodeReport()
    chunks = decode_outputs(path, specs, info, timeout_s=60, hwaccel="cuda:1", report=report)
    np.testing.assert_array_equal(np.concatenate([c for _, c in chunks]), software)
    if refuse:
        assert report.decoder == "cpu"
        assert report.fallback is not None and "Failed setup for format cuda" in report.fallback
    else:
        assert report == DecodeReport("cuda:1", None)


@pytest.mark.parametrize("refuse", [True, False])
def test_the_hardware_probe_says_no_where_nvdec_cannot_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refuse: bool
) -> None:
    """Where NVDEC cannot start (no libnvcuvid), libavcodec logs "Failed setup for format cuda", decodes
    in software and ffmpeg exits 0, -hwaccel_output_format or not: the probe must not take that for a
    working hardware decoder (the stage would then ask every video for NVDEC, and each fall back)."""
    monkeypatch.setenv("PATH", fake_nvdec_path(tmp_path, refuse))
    probe_nvdec = hwaccel_available.__wrapped__  # not the per-process cache: this PATH's ffmpeg
    assert probe_nvdec("cuda:1") is (not refuse)


def test_on_a_hardware_run_every_error_line_but_a_refusal_is_a_failure() -> None:
    """ffmpeg runs at -loglevel error, so a healthy hardware decode prints nothing. A refusal means ffmpeg
    decoded in software (the CPU's pictures); any other error line may be the decoder failing on pictures."""
    assert hwaccel_failures(REFUSED_STDERR) == [
        "[h264 @ 0x55d1c2f4a8c0] error while decoding MB 12 7, bytestream -7"
    ]
    assert hwaccel_failures(FAILED_STDERR) == [line.strip() for line in FAILED_STDERR.splitlines()]
    assert split_hwaccel_refusals(FAILED_STDERR)[0] == [] and hwaccel_failures("\n  \n") == []


def test_a_hardware_decoder_failing_mid_stream_is_redone_on_the_cpu(
    media: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NVDEC failing on pictures after it started gives wrong pictures of the right count and ffmpeg exits 0:
    the caller is told to drop what it got, and the file is decoded again on the CPU from its first frame."""
    path = str(media["index25"])
    info = probe(path)
    specs = {"2d": SPEC_2D, "3d": replace(SPEC_3D, chunk=32)}
    software: dict[str, list[np.ndarray]] = {}
    for key, chunk in stream_outputs(path, specs, info, timeout_s=60):
        software.setdefault(key, []).append(chunk)
    wrong_pictures = encode_frames(tmp_path / "wrong.mp4", 255 - index_frames(260), "25")
    monkeypatch.setenv("PATH", fake_nvdec_path(tmp_path, fail_with=wrong_pictures))
    got: dict[str, list[np.ndarray]] = {}
    dropped: dict[str, list[np.ndarray]] = {}
    reasons: list[str] = []

    def restart(reason: str) -> None:
        reasons.append(reason)
        dropped.update(got)
        got.clear()

    report = DecodeReport()
    for key, chunk in decode_outputs(
        path, specs, info, 60, hwaccel="cuda", report=report, on_restart=restart
    ):
        got.setdefault(key, []).append(chunk)
    assert len(reasons) == 1 and reasons[0].startswith("failed mid-stream: ")
    assert "cuvidDecodePicture(decoder->decoder, &ctx->pic_params) failed" in reasons[0]  # the first line
    for key in specs:
        np.testing.assert_array_equal(np.concatenate(got[key]), np.concatenate(software[key]))
        wrong = np.concatenate(dropped[key])
        assert wrong.shape == np.concatenate(software[key]).shape  # the right count: only the log tells
        assert not np.array_equal(wrong, np.concatenate(software[key]))
    assert report == DecodeReport("cpu", reasons[0])
    # A caller that cannot drop what it got gets an error, never the wrong pictures as a good video.
    with pytest.raises(DecodeError, match="the cuda decoder failed mid-stream"):
        list(decode_outputs(path, specs, info, 60, hwaccel="cuda"))


def test_a_hardware_run_is_stopped_at_its_first_error_line(
    media: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hardware decoder that logs a failure is not waited out: ffmpeg is killed at that line (this one
    would hang until the time budget killed it as a timeout) and the file is decoded on the CPU."""
    path = str(media["index25"])
    info = probe(path)
    specs = {"2d": SPEC_2D}
    software = np.concatenate([c for _, c in stream_outputs(path, specs, info, timeout_s=60)])
    monkeypatch.setenv("PATH", fake_nvdec_path(tmp_path, fail_at_start=True))
    report = DecodeReport()
    chunks = decode_outputs(path, specs, info, 20, hwaccel="cuda", report=report, on_restart=pytest.fail)
    np.testing.assert_array_equal(np.concatenate([c for _, c in chunks]), software)  # no frame came before
    assert report.decoder == "cpu" and report.fallback is not None
    assert report.fallback.startswith("failed mid-stream: ") and "cuvidDecodePicture" in report.fallback


def test_an_av1_file_is_handed_to_the_decoder_that_uses_the_gpu(media: dict[str, Path]) -> None:
    """ffmpeg's default AV1 decoder (libdav1d) ignores -hwaccel without a word: on the hardware path an AV1
    file names the native decoder, placed before its input; other codecs and the CPU path keep ffmpeg's
    choice."""
    from tasks.features.decode import _command

    path = str(media["smooth"])
    info = probe(path)
    assert info.codec == "h264"
    specs, marks = {"2d": SPEC_2D}, {"2d": 3}

    def command(info: VideoInfo, hwaccel: str | None) -> list[str]:
        return _command(path, specs, info, marks, {"2d": "rgb24"}, 1, hwaccel)

    av1 = replace(info, codec="av1")
    on_gpu = command(av1, "cuda:1")
    forced = on_gpu.index("-c:v")
    assert on_gpu[forced + 1] == "av1" and forced < on_gpu.index("-i")
    assert "-hwaccel" in on_gpu and on_gpu[on_gpu.index("-hwaccel_device") + 1] == "1"
    assert "-c:v" not in command(info, "cuda")  # H.264: ffmpeg's own decoder takes NVDEC
    assert "-c:v" not in command(av1, None)  # the CPU decodes AV1 with whatever ffmpeg prefers


@pytest.mark.parametrize(("rotation", "turns"), [(-90, -1), (90, 1)])
def test_a_video_shot_upright_is_read_upright_and_unsqueezed(
    tmp_path: Path, rotation: int, turns: int
) -> None:
    """A phone stores an upright video as landscape pixels plus a display matrix. ffmpeg turns the pictures
    before our filters see them, so the sizes must be those of the turned picture: scaled to the stored
    size, an upright 240x320 picture came out squeezed into 298x224, a distorted picture for every feature."""
    frames = smooth_frames(48)
    stored = encode_frames(tmp_path / "stored.mp4", frames, "24")
    rotated = with_display_rotation(stored, tmp_path / "rotated.mp4", rotation)
    upright = encode_frames(
        tmp_path / "upright.mp4", np.ascontiguousarray(np.rot90(frames, turns, (1, 2))), "24"
    )
    assert (probe(str(rotated)).width, probe(str(rotated)).height) == (240, 320)
    got, want = _frames(rotated), _frames(upright)
    assert got.shape == want.shape == (2, 298, 224, 3)
    # Two lossy encodes of the same pictures: about 1 level apart; turned the wrong way, about 70 apart.
    assert np.abs(got.astype(int) - want.astype(int)).mean() < 4
    clips = np.concatenate(list(stream_frames(str(rotated), SPEC_3D, probe(str(rotated)), timeout_s=60)))
    upright_clips = np.concatenate(
        list(stream_frames(str(upright), SPEC_3D, probe(str(upright)), timeout_s=60))
    )
    assert np.abs(clips.astype(int) - upright_clips.astype(int)).mean() < 4


def test_display_size_turns_quarter_rotations_and_stretches_by_the_sample_aspect() -> None:
    assert display_size(1920, 1080, -90.0) == (1080, 1920)
    assert display_size(1920, 1080, 270.0) == (1080, 1920)
    assert display_size(1920, 1080, 180.0) == (1920, 1080)
    assert display_size(1920, 1080, -180.0, "1:1") == (1920, 1080)
    # Anamorphic storage (DVD-style 720x480 shown 16:9): ffprobe's sample aspect ratio widens it.
    assert display_size(720, 480, 0.0, "32:27") == (853, 480)
    assert display_size(720, 480, 90.0, "32:27") == (480, 853)
    for unknown in (None, "N/A", "0:1", "1:0", ""):
        assert display_size(640, 360, 0.0, unknown) == (640, 360)
