"""The decoder that keeps frames on the GPU ("pyav-gpu", tasks/features/decode_device.py), run here on CPU
tensors: the same frames picked as the CPU path, pixels within a level or so of swscale's, features within
cosine 0.99, and the extractor taking its tensors. (NVDEC itself needs a GPU: `flows/device_check.py`.)"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from features_media import (
    encode_frames,
    index_frames,
    make_testsrc,
    read_index,
    smooth_frames,
    with_display_rotation,
)

from models.encoders import encode, pick_runtime, prepare
from tasks.features import decode_av, decode_device, decoder_choice
from tasks.features.decode import SPEC_2D, SPEC_3D, DecodeError, as_clips, decode_outputs, probe_with
from tasks.features.decoder_choice import choose, for_the_stage
from tasks.features.extractor import Extractor, ExtractorSettings, VideoJob
from tasks.features.frames_torch import Colour, yuv_to_rgb

BOTH = {"2d": SPEC_2D, "3d": SPEC_3D}
# The CPU path in the device path's order: both outputs converted to RGB, then scaled (frames_torch.py).
RGB_FIRST = {"2d": SPEC_2D, "3d": replace(SPEC_3D, rgb_first=True)}
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def videos(media: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("device")
    landscape = make_testsrc(out / "landscape.mp4", "640x360", "30", 2)
    ts = out / "offset.ts"  # the first frame at 1.4 s on the container's clock
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(landscape), "-c", "copy", str(ts)], check=True)
    select = "select='not(mod(n\\,3))+lt(n\\,20)'"
    vfr = make_testsrc(out / "vfr.mp4", "640x360", "30", 2, "-vf", select, "-vsync", "vfr", "-bf", "3")
    mkv = out / "vfr.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(vfr), "-c", "copy", str(mkv)], check=True)
    stored = encode_frames(out / "stored.mp4", smooth_frames(48), "24")
    return {
        "landscape": landscape,
        "offset": ts,
        "vfr_mkv": mkv,
        "portrait": make_testsrc(out / "portrait.mp4", "360x640", "25", 2),
        "anamorphic": make_testsrc(out / "anamorphic.mp4", "720x480", "30000/1001", 2, "-vf", "setsar=32/27"),
        # YouTube's HD streams say BT.709: the matrix is the frame's, as swscale takes it.
        "bt709": make_testsrc(
            out / "bt709.mp4",
            "640x360",
            "30",
            2,
            "-colorspace",
            "bt709",
            "-color_primaries",
            "bt709",
            "-color_trc",
            "bt709",
        ),  # fmt: skip
        "full_range": make_testsrc(out / "full.mp4", "640x360", "30", 2, "-pix_fmt", "yuvj420p"),
        "yuv444": make_testsrc(out / "yuv444.mp4", "640x360", "30", 2, "-pix_fmt", "yuv444p"),
        "yuv422": make_testsrc(out / "yuv422.mp4", "640x360", "30", 2, "-pix_fmt", "yuv422p"),
        # A format the torch steps do not take: converted to 8-bit 4:4:4 on the CPU first.
        "tenbit": make_testsrc(out / "tenbit.mp4", "640x360", "30", 2, "-pix_fmt", "yuv420p10le"),
        "vp9_webm": make_testsrc(out / "vp9.webm", "640x360", "30", 2, codec="libvpx-vp9"),
        "rotated": with_display_rotation(stored, out / "rotated.mp4", -90),
        "index25": media["index25"],
        "index2997": media["index2997"],
    }


def _cpu_path(path: Path, specs: dict = BOTH) -> dict[str, np.ndarray]:
    info = decode_av.probe(str(path))
    got: dict[str, list[np.ndarray]] = {key: [] for key in specs}
    for key, chunk in decode_av.stream_outputs(str(path), specs, info, 60):
        got[key].append(chunk)
    return {key: np.concatenate(chunks) for key, chunks in got.items()}


def _device_path(path: Path, specs: dict = BOTH) -> dict[str, np.ndarray]:
    info = decode_av.probe(str(path))
    got: dict[str, list[np.ndarray]] = {key: [] for key in specs}
    for key, chunk in decode_device.device_outputs(str(path), specs, info, 60, CPU):
        assert (
            isinstance(chunk, torch.Tensor) and chunk.dtype == torch.uint8 and len(chunk) <= specs[key].chunk
        )
        got[key].append(chunk.numpy())
    return {key: np.concatenate(chunks) for key, chunks in got.items()}


@pytest.mark.parametrize(
    "name",
    [
        "landscape", "offset", "vfr_mkv", "portrait", "anamorphic", "bt709", "full_range", "yuv444",
        "yuv422", "tenbit", "vp9_webm", "rotated", "index25", "index2997",
    ],
)  # fmt: skip
def test_device_frames_are_the_cpu_paths_frames(videos: dict[str, Path], name: str) -> None:
    """The same frames picked (the fps filter's rule), as many, in the same size; the pixels within about a
    level of swscale's in the same order (RGB, then scaled). A wrong colour matrix or range puts them 8
    levels apart, a pixel's shift or a wrong turn tens of levels."""
    cpu, device = _cpu_path(videos[name], RGB_FIRST), _device_path(videos[name])
    for key in BOTH:
        assert device[key].shape == cpu[key].shape, key
        diff = np.abs(device[key].astype(np.int16) - cpu[key].astype(np.int16))
        assert diff.mean() < 1.5, (key, diff.mean())
        assert np.percentile(diff, 99) <= 16, (key, np.percentile(diff, 99))


def test_device_frames_show_the_frame_on_screen_at_each_second(videos: dict[str, Path]) -> None:
    for name, rate in (("index25", 25), ("index2997", 30000 / 1001)):
        frames = _device_path(videos[name])["2d"]
        assert [read_index(f) for f in frames] == [int(k * rate + 1e-6) for k in range(len(frames))], name
        clips = _device_path(videos[name])["3d"]
        assert [read_index(f) for f in clips] == [read_index(f) for f in _cpu_path(videos[name])["3d"]], name


def test_features_of_device_frames_agree_with_the_cpu_frames(
    videos: dict[str, Path], encoders: dict[str, torch.nn.Module]
) -> None:
    """Per row, on calibrated weights, against the CPU path as the stage runs it. 2D (both convert, then
    scale): cosine >= 0.99. 3D: the CPU scales in YUV, where swscale's chroma placement moves with the
    output size, and its 4:2:0 converter sits about a level darker than the exact conversion; swscale's own
    RGB-first rows are at 0.990 on the turned phone video, the device path's at 0.988: >= 0.985, and within
    0.005 of swscale's own."""
    rt = pick_runtime("cpu", "fp32")
    nets = {model: prepare(encoders[model], rt) for model in ("resnet152", "resnext101")}
    for name in ("rotated", "portrait"):
        cpu, device = _cpu_path(videos[name]), _device_path(videos[name])
        rgb_first = _cpu_path(videos[name], RGB_FIRST)
        two_d = [encode(nets["resnet152"], rows[:4], rt) for rows in (cpu["2d"], device["2d"])]
        cosines = (two_d[0] * two_d[1]).sum(axis=1)
        assert len(cosines) >= 2 and cosines.min() >= 0.99, (name, cosines)
        three_d = [
            encode(nets["resnext101"], as_clips(rows["3d"])[:2], rt) for rows in (cpu, device, rgb_first)
        ]
        ours, swscale_own = (three_d[0] * three_d[1]).sum(axis=1), (three_d[0] * three_d[2]).sum(axis=1)
        assert ours.min() >= 0.985 and ours.min() >= swscale_own.min() - 0.005, (name, ours, swscale_own)


def test_nv12_planes_give_the_planar_pictures_colours() -> None:
    """NVDEC hands NV12 over: its interleaved chroma, split into two views, converts as yuv420p does."""
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (2, 64, 96, 3), dtype=np.uint8)
    for rgb in picture:
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        planar = [t[None] for t in decode_device.planes(frame)]
        nv12 = [t[None] for t in decode_device.planes(frame.reformat(format="nv12"))]
        assert nv12[1].stride() != planar[1].stride()  # really the interleaved plane
        assert torch.equal(yuv_to_rgb(*planar, Colour()), yuv_to_rgb(*nv12, Colour()))


class _GpuFrame:
    """What PyAV hands over for a picture NVDEC kept in GPU memory, played by a host frame: format "cuda",
    the samples' layout in sw_format, no DLPack export outside NV12/P010/P016 (PyAV raises
    NotImplementedError there), and reformat() as PyAV's download to the host."""

    class _Cuda:
        name = "cuda"

    def __init__(self, samples: av.VideoFrame) -> None:
        self.samples, self.format, self.downloads = samples, self._Cuda(), 0

    @property
    def sw_format(self) -> object:
        return self.samples.format

    class _Plane:
        def __init__(self, plane: object, exportable: bool) -> None:
            self.plane, self.exportable = plane, exportable

        def __dlpack__(self) -> object:
            if not self.exportable:
                raise NotImplementedError("unsupported sw_format for DLPack export")
            return self.plane.__dlpack__()  # type: ignore[attr-defined]

    @property
    def planes(self) -> tuple[object, ...]:
        exportable = self.samples.format.name in decode_device.SEMI_PLANAR
        return tuple(self._Plane(p, exportable) for p in self.samples.planes)

    def reformat(self, format: str) -> av.VideoFrame:  # noqa: A002 - PyAV's keyword
        self.downloads += 1
        return self.samples.reformat(format=format)


def test_gpu_pictures_in_layouts_pyav_cannot_export_are_downloaded_not_refused() -> None:
    """A 4:4:4 stream on NVDEC gives yuv444p (16-bit: yuv444p16le) pictures in GPU memory, which PyAV does not
    export through DLPack: they are copied to the host in their layout and convert as the CPU's frames do,
    instead of failing the GPU decode of the whole video. NV12 is exported without a copy."""
    rgb = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    for name, bits in (("yuv444p", 8), ("yuv444p16le", 16), ("nv12", 8), ("p010le", 16)):
        host = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=name)
        gpu = _GpuFrame(host)
        assert decode_device.sample_bits(gpu) == decode_device.sample_bits(host) == bits, name
        got, expected = decode_device.planes(gpu), decode_device.planes(host)
        assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True)), name
        assert gpu.downloads == (0 if name in decode_device.SEMI_PLANAR else 1), name


def test_odd_sizes_keep_the_full_picture() -> None:
    """An odd width or height: chroma covers it (DLPack's NV12 gives floor(W/2) chroma columns)."""
    y = torch.full((1, 5, 7), 120, dtype=torch.uint8)
    u = torch.full((1, 2, 3), 90, dtype=torch.uint8)
    v = torch.full((1, 2, 3), 200, dtype=torch.uint8)
    rgb = yuv_to_rgb(y, u, v, Colour())
    assert rgb.shape == (1, 3, 5, 7)
    assert torch.allclose(rgb, rgb[:, :, :1, :1].expand_as(rgb))  # flat chroma: one colour everywhere
    assert rgb[0, 0, 0, 0] > rgb[0, 2, 0, 0]  # V well above neutral: red over blue


def test_without_a_gpu_decoder_it_is_pyavs_cpu_path(videos: dict[str, Path]) -> None:
    path = str(videos["landscape"])
    info = probe_with("pyav-gpu", path)
    chunks = list(decode_outputs(path, BOTH, info, 60, decoder="pyav-gpu"))
    assert chunks and all(isinstance(c, np.ndarray) for _, c in chunks)
    got = {k: np.concatenate([c for key, c in chunks if key == k]) for k in BOTH}
    cpu = _cpu_path(videos["landscape"])
    assert all(np.array_equal(got[k], cpu[k]) for k in BOTH)


def test_damaged_files_fail_as_on_the_cpu_path(media: dict[str, Path]) -> None:
    info = decode_av.probe(str(media["smooth"]))
    with pytest.raises(DecodeError):
        list(decode_device.device_outputs(str(media["corrupt"]), BOTH, info, 60, CPU))
    with pytest.raises(DecodeError):
        list(decode_device.device_outputs(str(media["truncated"]), BOTH, info, 60, CPU))


def test_the_stage_takes_it_only_when_asked() -> None:
    decodes = lambda decoder: True  # noqa: E731 - NVDEC reachable
    asked = choose("pyav-gpu", "cuda", cli_installed=True, gpu_decodes=decodes)
    assert (asked.decoder, asked.hwaccel) == ("pyav-gpu", "cuda")
    # decode_hwaccel=auto does not turn it back to the CPU, as it does PyAV's copying NVDEC path.
    staged = for_the_stage("pyav-gpu", "cuda", True, True, True, decodes)
    assert (staged.decoder, staged.hwaccel, staged.nvdec_declined) == ("pyav-gpu", "cuda", False)
    no_gpu = choose("pyav-gpu", None, True, decodes)
    assert (no_gpu.decoder, no_gpu.hwaccel) == ("pyav", None) and "no GPU" in no_gpu.why
    assert choose("auto", "cuda", True, decodes).decoder != "pyav-gpu"
    no_nvdec = choose("pyav-gpu", "cuda", True, lambda decoder: False)
    assert (no_nvdec.decoder, no_nvdec.hwaccel) == ("pyav", None) and "no GPU decodes here" in no_nvdec.why


SMALL_2D = SPEC_2D.__class__(fps=1.0, short_side=64, round="up", chunk=8, rgb_first=True)
SMALL_3D = SPEC_3D.__class__(fps=24.0, short_side=32, crop=32, chunk=64)


@pytest.mark.parametrize("across", [False, True])
def test_the_extractor_encodes_frames_kept_on_the_device(
    videos: dict[str, Path],
    media: dict[str, Path],
    encoders: dict[str, torch.nn.Module],
    monkeypatch: pytest.MonkeyPatch,
    across: bool,
) -> None:
    """Tensor chunks through clips, per-video and cross-video batches and the in-flight encoder: the rows
    of the device frames encoded whole, the CPU path's row count and time spans, a bad file a failed row."""
    rt = pick_runtime("cpu", "fp32")
    nets = {m: prepare(n, rt) for m, n in encoders.items()}
    specs = {"resnet152": SMALL_2D, "resnext101": SMALL_3D}
    named = {"a": videos["rotated"], "b": media["smooth"]}
    jobs = [VideoJob(n, str(p)) for n, p in named.items()] + [VideoJob("bad", str(media["corrupt"]))]

    def run(decoder: str) -> dict:
        settings = ExtractorSettings(
            batch_2d=3, batch_3d=2, decode_workers=2, across_videos=across, decoder=decoder
        )
        return {r.video_id: r for r in Extractor(nets, specs, rt, settings).run(jobs)}

    cpu = run("pyav")
    on_device = lambda path, specs, info, timeout_s, **kw: decode_device.device_outputs(  # noqa: E731
        path, specs, info, timeout_s, CPU, report=kw.get("report")
    )
    monkeypatch.setattr(decode_device, "stream_outputs", on_device)
    device = run("pyav-gpu")
    assert device["bad"].status == "failed" and cpu["bad"].status == "failed"
    for vid, path in named.items():
        assert device[vid].status == "ok"
        frames = _device_path(path, {"resnet152": SMALL_2D, "resnext101": SMALL_3D})
        for model in specs:
            a, b = cpu[vid].rows[model], device[vid].rows[model]
            assert np.array_equal(a.t_start_ms, b.t_start_ms) and np.array_equal(a.t_end_ms, b.t_end_ms)
            rows = as_clips(frames[model]) if model == "resnext101" else frames[model]
            whole = encode(nets[model], rows, rt)
            assert whole.shape == b.vectors.shape
            assert float((whole * b.vectors).sum(axis=1).min()) > 0.9999, (vid, model)


def test_index_frames_are_readable_after_conversion() -> None:
    """The test's own probe: index frames survive the torch steps (so the frame-identity test can fail)."""
    frames = index_frames(8)
    rgb = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    from tasks.features.frames_torch import resize_crop

    small = resize_crop(rgb, 160, 120, None).numpy()
    assert [read_index(f) for f in small] == list(range(8))


def test_big_pictures_are_converted_in_groups_with_the_same_result(
    videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory is bounded by converting a chunk a few frames at a time (1080p): the frames do not change."""
    whole = _device_path(videos["landscape"])
    monkeypatch.setattr(decode_device, "CONVERT_BYTES", 3 * 4 * 640 * 360 * 5)  # 5 frames a call
    grouped = _device_path(videos["landscape"])
    assert all(np.array_equal(whole[key], grouped[key]) for key in BOTH)


def test_frames_are_kept_on_the_gpu_only_where_nvdec_decodes_into_torchs_context() -> None:
    """NVDEC's frames in a CUDA context FFmpeg made for itself are not addressable from torch's kernels:
    where PyAV decodes on the GPU but not in torch's context, pyav-gpu falls back to the CPU and says why."""
    separate = lambda decoder: decoder != "pyav-gpu"  # noqa: E731 - NVDEC works, in its own context only
    choice = choose("pyav-gpu", "cuda:1", True, separate)
    assert (choice.decoder, choice.hwaccel) == ("pyav", None)
    assert "cannot decode into torch's CUDA context on cuda:1" in choice.why


def test_the_host_check_for_pyav_gpu_is_the_shared_context_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, str]] = []
    monkeypatch.setattr(
        decode_av, "decoders_share_torch_context", lambda d: asked.append(("shared", d)) or False
    )
    monkeypatch.setattr(decode_av, "hwaccel_available", lambda d: asked.append(("nvdec", d)) or True)
    check = decoder_choice.gpu_decodes("cuda:1")
    assert (check("pyav-gpu"), check("pyav"), check("pyav-child")) == (False, True, True)
    assert asked == [("shared", "cuda:1"), ("nvdec", "cuda:1"), ("nvdec", "cuda:1")]
