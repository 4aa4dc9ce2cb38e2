"""The in-process decoder (PyAV): the command line's frames and errors, and which decoder the stage picks."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from features_media import (
    decoded_outputs,
    encode_frames,
    index_frames,
    make_testsrc,
    read_index,
    smooth_frames,
    with_display_rotation,
)

from tasks.features import decode_av
from tasks.features.decode import (
    SPEC_2D,
    SPEC_3D,
    DecodeError,
    DecodeReport,
    DecodeTimeout,
    VideoInfo,
    decode_outputs,
    probe,
    probe_with,
)
from tasks.features.decoder_choice import DecoderChoice, DecoderUnavailable, choose

BOTH = {"2d": SPEC_2D, "3d": SPEC_3D}


_outputs = decoded_outputs


_testsrc = make_testsrc


@pytest.fixture(scope="module")
def sources(media: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("pyav")
    landscape = _testsrc(out / "landscape.mp4", "640x360", "30", 3)
    ts = out / "offset.ts"  # MPEG-TS: the first frame at 1.4 s on the container's clock
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(landscape), "-c", "copy", str(ts)], check=True)
    # Variable frame rate (frames dropped unevenly) with B-frames, in Matroska: the duration is the
    # container's, the timestamps irregular and reordered.
    select = "select='not(mod(n\\,3))+lt(n\\,20)'"
    vfr = _testsrc(out / "vfr.mp4", "640x360", "30", 3, "-vf", select, "-vsync", "vfr", "-bf", "3")
    mkv = out / "vfr.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(vfr), "-c", "copy", str(mkv)], check=True)
    return {
        "vfr_mkv": mkv,
        "vp9_webm": _testsrc(
            out / "vp9.webm", "640x360", "30", 2, codec="libvpx-vp9"
        ),  # YouTube's other codec
        "landscape": landscape,
        "offset": ts,
        # DVD-style anamorphic pixels at 29.97 fps: shown 853x480
        "anamorphic": _testsrc(out / "anamorphic.mp4", "720x480", "30000/1001", 2.5, "-vf", "setsar=32/27"),
        "portrait": _testsrc(out / "portrait.mp4", "360x640", "25", 2),
        "index25": media["index25"],
        "index2997": media["index2997"],
    }


@pytest.mark.parametrize(
    "name", ["landscape", "offset", "anamorphic", "portrait", "index25", "index2997", "vfr_mkv", "vp9_webm"]
)
def test_pyav_gives_the_command_lines_frames(sources: dict[str, Path], name: str) -> None:
    """Same probe, same frames picked, same pixels: the features do not depend on the decoder."""
    path = sources[name]
    assert probe_with("pyav", str(path)) == probe(str(path))
    cli, av = _outputs(path, "ffmpeg"), _outputs(path, "pyav")
    for key in BOTH:
        assert av[key].shape == cli[key].shape, key
        assert np.array_equal(av[key], cli[key]), (key, np.abs(av[key].astype(int) - cli[key]).max())


def test_pyav_picks_the_frame_on_screen_at_each_second(media: dict[str, Path]) -> None:
    frames = _outputs(media["index2997"], "pyav")["2d"]
    rate = 30000 / 1001
    assert [read_index(f) for f in frames] == [int(k * rate + 1e-6) for k in range(len(frames))]
    assert len(frames) == 6  # 155 frames at 29.97 fps: 5.17 s


@pytest.mark.parametrize(("rotation", "turns"), [(-90, -1), (90, 1), (180, 2)])
def test_pyav_turns_a_phone_video_upright(tmp_path: Path, rotation: int, turns: int) -> None:
    """A display matrix turns the picture before the filters, as ffmpeg's autorotate does. (The 3D branch
    scales in YUV, where ffmpeg 5's scaler and the wheel's newer one place the turned chroma differently:
    compared with an upright encode, like the command line's own test, not bit for bit.)"""
    frames = smooth_frames(48)
    stored = encode_frames(tmp_path / "stored.mp4", frames, "24")
    rotated = with_display_rotation(stored, tmp_path / "rotated.mp4", rotation)
    upright = encode_frames(
        tmp_path / "upright.mp4", np.ascontiguousarray(np.rot90(frames, turns, (1, 2))), "24"
    )
    assert probe_with("pyav", str(rotated)) == probe(str(rotated))
    got, want = _outputs(rotated, "pyav"), _outputs(upright, "ffmpeg")
    for key in BOTH:
        assert got[key].shape == want[key].shape
        # Two lossy encodes of the same pictures: about 1 level apart; turned the wrong way, about 70 apart.
        assert np.abs(got[key].astype(int) - want[key].astype(int)).mean() < 4, key
    assert np.array_equal(got["2d"], _outputs(rotated, "ffmpeg")["2d"])  # scaled in RGB: bit for bit


def test_pyav_outputs_planar_rgb_only_where_its_libraries_write_the_same_pixels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The wheel's swscale is checked on its own (it is newer than the system ffmpeg's): planar gbrp where
    it carries rgb24's pixels, and the check can say no (an even width in YUV takes another chroma path)."""
    assert decode_av.planar_rgb_exact("rgb_scaled") and decode_av.planar_rgb_exact("yuv_odd_width")
    even = {"even": (("fps=24,scale=198:112,crop=112:112:43:0", 112, 112),)}
    monkeypatch.setattr(decode_av, "PLANAR_CHECKS", even)
    assert not decode_av.planar_rgb_exact("even")
    wide = VideoInfo(640, 360, 10.0, "yuv420p")
    assert decode_av.branch_filters(SPEC_3D, wide, "gbrp")[-1] == "format=gbrp"


def test_pyav_reports_a_corrupt_and_a_truncated_file(media: dict[str, Path]) -> None:
    with pytest.raises(DecodeError, match="Invalid data|moov atom"):
        probe_with("pyav", str(media["corrupt"]))
    path = str(media["truncated"])
    with pytest.raises(DecodeError) as caught:
        info = probe_with("pyav", path)
        list(decode_outputs(path, BOTH, info, 60, decoder="pyav"))
    assert str(caught.value)


def test_pyav_gives_up_on_a_decode_that_hangs(tmp_path: Path) -> None:
    fifo = tmp_path / "never-written.mp4"
    os.mkfifo(fifo)  # opening blocks until a writer comes: a stand-in for a stalled network mount
    info = VideoInfo(width=160, height=120, duration_s=1.0)
    try:
        with pytest.raises(DecodeTimeout, match="timeout"):
            probe_with("pyav", str(fifo), timeout_s=0.5)
        with pytest.raises(DecodeTimeout, match="timeout"):
            list(decode_av.stream_outputs(str(fifo), {"2d": SPEC_2D}, info, timeout_s=0.5))
    finally:
        # Let the abandoned threads' opens return (an empty file), so that they end.
        for _ in range(2):
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass  # no reader (ENXIO): no thread is inside open


def test_pyav_chunks_stay_bounded_and_hold_every_frame(media: dict[str, Path]) -> None:
    path = str(media["index25"])
    info = probe_with("pyav", path)
    sizes = [len(c) for _, c in decode_av.stream_outputs(path, {"3d": SPEC_3D}, info, timeout_s=60)]
    assert max(sizes) <= SPEC_3D.chunk and sum(sizes) == round(260 / 25 * 24)


def test_pyav_without_a_gpu_decodes_on_the_cpu_and_says_so(media: dict[str, Path]) -> None:
    if decode_av.hwaccel_available("cuda"):
        pytest.skip("a GPU that PyAV decodes on is present")
    report = DecodeReport()
    frames = _outputs(media["index25"], "pyav", report)  # asked for nothing: the CPU
    assert report.decoder == "cpu"
    path = str(media["index25"])
    info = probe_with("pyav", path)
    asked = DecodeReport()
    got = {key: [] for key in BOTH}
    for key, chunk in decode_outputs(path, BOTH, info, 60, hwaccel="cuda", report=asked, decoder="pyav"):
        got[key].append(chunk)
    assert asked.decoder == "cpu" and asked.fallback
    assert all(np.array_equal(np.concatenate(got[k]), frames[k]) for k in BOTH)


def test_a_stream_nvdec_refuses_is_not_reported_as_decoded_on_the_gpu() -> None:
    """PyAV's is_hwaccel is True as soon as the device context exists; when NVDEC then refuses the stream,
    libavcodec decodes it in software and the codec context's pixel format is the software one. Stand-in
    contexts, as PyAV shows them after the first frame (no GPU needed)."""
    from types import SimpleNamespace

    on_gpu = SimpleNamespace(is_hwaccel=True, pix_fmt="cuda")
    fell_back = SimpleNamespace(is_hwaccel=True, pix_fmt="yuv420p")
    no_device = SimpleNamespace(is_hwaccel=False, pix_fmt="yuv420p")
    assert decode_av.decodes_on_hardware(on_gpu, "cuda") and decode_av.decodes_on_hardware(on_gpu, "cuda:1")
    assert not decode_av.decodes_on_hardware(fell_back, "cuda")
    assert not decode_av.decodes_on_hardware(no_device, "cuda")
    assert not decode_av.decodes_on_hardware(on_gpu, None)


def _pair(choice: DecoderChoice) -> tuple[str, str | None]:
    return choice.decoder, choice.hwaccel


def _choose(setting: str, wanted: str | None, cli: bool, gpu: set[str]) -> DecoderChoice:
    asked: list[str] = []

    def gpu_decodes(decoder: str) -> bool:
        asked.append(decoder)
        return decoder in gpu

    choice = choose(setting, wanted, cli, gpu_decodes)
    if wanted is None:
        assert not asked  # no GPU wanted: no clip is encoded to probe one
    return choice


def test_auto_keeps_the_command_line_where_it_does_the_job() -> None:
    assert _pair(_choose("auto", None, True, set())) == ("ffmpeg", None)
    assert _pair(_choose("auto", "cuda", True, {"ffmpeg", "pyav"})) == ("ffmpeg", "cuda")
    assert _pair(_choose("auto", "cuda:1", True, {"pyav"})) == (
        "pyav",
        "cuda:1",
    )  # a distro ffmpeg without NVDEC
    assert _pair(_choose("auto", "cuda", True, set())) == ("ffmpeg", None)


def test_auto_takes_pyav_on_a_host_without_ffmpeg() -> None:
    assert _pair(_choose("auto", None, False, set())) == ("pyav", None)
    assert _pair(_choose("auto", "cuda", False, {"pyav"})) == ("pyav", "cuda")
    choice = _choose("auto", "cuda", False, set())
    assert _pair(choice) == ("pyav", None) and "CPU" in choice.why


def test_a_named_decoder_is_kept_and_a_missing_one_is_a_clear_error() -> None:
    assert _pair(_choose("pyav", None, True, set())) == ("pyav", None)
    assert _pair(_choose("ffmpeg", "cuda", True, {"pyav"})) == ("ffmpeg", None)  # named: not swapped
    with pytest.raises(DecoderUnavailable, match="ffmpeg/ffprobe are not on PATH.*decoder=pyav"):
        _choose("ffmpeg", None, False, {"pyav"})


def test_the_extractor_on_pyav_gives_the_command_lines_features(
    media: dict[str, Path], encoders: dict[str, object]
) -> None:
    from models.encoders import pick_runtime
    from tasks.features.extractor import MODEL_2D, MODEL_3D, Extractor, ExtractorSettings, VideoJob

    rt = pick_runtime("cpu", "fp32")
    specs = {MODEL_2D: SPEC_2D, MODEL_3D: SPEC_3D}
    results = {}
    for decoder in ("ffmpeg", "pyav", "pyav-child"):
        extractor = Extractor(encoders, specs, rt, ExtractorSettings(decoder=decoder))  # type: ignore[arg-type]
        (result,) = extractor.run([VideoJob("smooth", str(media["smooth"]))])
        assert result.status == "ok", result.error
        results[decoder] = result
    for model in specs:
        a = results["ffmpeg"].rows[model]
        for decoder in ("pyav", "pyav-child"):
            b = results[decoder].rows[model]
            assert np.array_equal(a.vectors, b.vectors) and np.array_equal(a.t_start_ms, b.t_start_ms)


def test_index_frames_survive_the_pyav_path(tmp_path: Path) -> None:
    """Many short chunks and a flush at the end: every 3D frame in order, none repeated or lost."""
    path = encode_frames(tmp_path / "index24.mp4", index_frames(40), "24")
    info = probe_with("pyav", str(path))
    spec = SPEC_3D.__class__(fps=24.0, short_side=240, chunk=16)
    frames = np.concatenate([c for _, c in decode_av.stream_outputs(str(path), {"f": spec}, info, 60)])
    assert [read_index(f) for f in frames] == list(range(40))


def test_pyav_gpu_decoders_work_in_torchs_cuda_context_where_ffmpeg_accepts_it(
    media: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where FFmpeg takes torch's CUDA context (the once-per-process probe says so), every PyAV decoder on the
    GPU asks for the thread's current context (`current_ctx`) instead of creating one per video; elsewhere,
    as on this GPU-less machine, each gets FFmpeg's default. What reaches av.open is recorded, and the file
    then opened on the CPU (without a GPU, FFmpeg refuses to create a CUDA device at all)."""
    av = pytest.importorskip("av")
    assert not decode_av.decoders_share_torch_context("cuda")  # no CUDA in this torch: nothing to share
    seen: list[object] = []
    real_open = av.open

    def recording_open(file: object, *args: object, hwaccel: object = None, **kwargs: object) -> object:
        seen.append(hwaccel)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(av, "open", recording_open)
    for shares, options in ((False, {}), (True, {"current_ctx": "1"})):
        monkeypatch.setattr(decode_av, "decoders_share_torch_context", lambda device, ok=shares: ok)
        monkeypatch.setattr(decode_av, "_bind_torch_context", lambda device: True)
        for device, index in (("cuda", 0), ("cuda:1", 1)):
            seen.clear()
            container, _ = decode_av._open(str(media["index25"]), device)
            container.close()
            (accel,) = seen
            assert accel.options == options and accel.device_id == index and accel.allow_software_fallback
    # A thread where torch's context cannot be made current falls back to a context of its own.
    monkeypatch.setattr(decode_av, "_bind_torch_context", lambda device: False)
    seen.clear()
    decode_av._open(str(media["index25"]), "cuda")[0].close()
    assert seen[0].options == {}
    assert decode_av.hwaccel_settings("vaapi", software_fallback=True, in_current_context=True).options == {}
