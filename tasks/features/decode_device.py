"""Decode with the frames kept where the encoders run ("pyav-gpu"): NVDEC leaves each picture in GPU memory
(PyAV's is_hw_owned, exported through DLPack), and the fps pick, colour conversion, turn, scale and crop run
in torch on the device, a chunk of frames at a time. Nothing crosses the PCIe bus but the compressed video,
and no CPU core touches a pixel: the CPU path's filters (swscale) were what capped PyAV's NVDEC at 83x real
time on a 16-core GPU host.

The frames are not swscale's bit for bit (tasks/features/frames_torch.py): the features agree to a cosine of
0.99 or better, not exactly, so the stage takes this decoder only when asked (features.decoder=pyav-gpu).
A stream NVDEC refuses is decoded on the CPU and its pictures uploaded for the same torch steps. Planar YUV
of any subsampling and depth (4:2:0, 4:2:2, 4:4:4; 8 to 16 bits) and NVDEC's NV12/P010 go in as they are;
a format the steps do not take (packed, with alpha) is converted to 8-bit 4:4:4 by swscale first. Without
a GPU to decode on, the decoder is PyAV's CPU path (decode_av.py) with its numpy chunks.

The same code runs on CPU tensors (device "cpu"): that is how the tests check it against the CPU path.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from fractions import Fraction
from typing import Any

import torch

from tasks.features import decode_av
from tasks.features.decode import FPS_START_TIME, DecodeReport, StreamSpec, VideoInfo
from tasks.features.fps_pick import FpsPicker
from tasks.features.frames_torch import Colour, resize_crop, upright, yuv_to_rgb

# AVColorSpace values swscale distinguishes, by FFmpeg's names (libavutil/pixfmt.h).
_COLORSPACES = {
    1: "bt709",
    4: "fcc",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    9: "bt2020nc",
    10: "bt2020c",
}
_FULL_RANGE = 2  # AVCOL_RANGE_JPEG
# Luma plane and one interleaved chroma plane: NVDEC's 4:2:0 output (NV12, or P010/P016 for 10-bit
# streams), in GPU memory or on the host. They are also the only formats PyAV exports from GPU memory through
# DLPack (av/video/plane.py); NVDEC's other outputs (4:4:4, FFmpeg 8's 4:2:2) are downloaded first (planes).
SEMI_PLANAR = ("nv12", "p010le", "p016le")
# Float RGB bytes one torch conversion may hold: a chunk of 360p frames (2.8 MB each) goes in one call,
# 1080p (25 MB each) in groups of 8, so a 64-frame 3D chunk does not hold 1.6 GB per decoder in flight.
CONVERT_BYTES = 200 * 2**20


def on_device(frame: Any) -> bool:
    """Whether the picture is in GPU memory (NVDEC's, kept there: PyAV's format "cuda")."""
    return bool(frame.format.name == "cuda")


def layout(frame: Any) -> Any:
    """The frame's pixel layout (a PyAV VideoFormat): for a picture in GPU memory the software format of its
    samples (NVDEC's nv12, p010le, yuv444p, ...), else its own format."""
    return frame.sw_format if on_device(frame) and frame.sw_format is not None else frame.format


def planes(frame: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A decoded picture's Y, U and V planes as tensors on the device holding them, without a copy: (H, W)
    and two chroma planes (NV12's interleaved chroma split into two strided views).

    Through PyAV's DLPack capsules, not torch.from_dlpack(plane): for a CUDA plane torch passes its stream,
    and PyAV refuses any. NVDEC's copy into the frame and the torch steps are both on the legacy default
    stream, so they are ordered without a synchronisation. The capsule holds a reference to the frame's
    buffer: the pool does not hand it out again while the tensor lives.

    A picture in GPU memory in a layout PyAV cannot export (a 4:4:4 stream's yuv444p on NVDEC) is copied to
    the host in that layout and goes on as planar YUV; exporting it raised, and the whole video was decoded
    again on the CPU."""
    if on_device(frame) and layout(frame).name not in SEMI_PLANAR:
        frame = frame.reformat(format=layout(frame).name)  # av_hwframe_transfer_data: the same samples
    if layout(frame).name in SEMI_PLANAR:
        y = torch.from_dlpack(frame.planes[0].__dlpack__())
        uv = torch.from_dlpack(frame.planes[1].__dlpack__())
        return y, uv[..., 0], uv[..., 1]
    if not planar_yuv(frame):
        frame = frame.reformat(format="yuv444p")  # packed, alpha or odd formats: 8 bits, chroma kept whole
    y, u, v = (torch.from_dlpack(frame.planes[k].__dlpack__()) for k in range(3))
    return y, u, v


def planar_yuv(frame: Any) -> bool:
    """Three planes of Y, U and V (8 to 16 bits each): the torch steps take them as they are."""
    fmt = layout(frame)
    return bool(fmt.name.startswith("yuv") and fmt.is_planar and len(frame.planes) == 3)


def sample_bits(frame: Any) -> int:
    """The bits a sample's value spans: NVDEC's 16-bit formats (P010, P016, yuv444p16le) hold theirs in the
    high bits, so as 16; planar formats as their components say (10 for yuv420p10le)."""
    fmt = layout(frame)
    if fmt.name in SEMI_PLANAR:
        return 16 if fmt.name != "nv12" else 8
    return int(fmt.components[0].bits) if planar_yuv(frame) else 8


class _SpecFrames:
    """One output's picked frames, turned into uint8 chunks of `spec.chunk` frames. The decoded frames are
    held as they are and their planes exported only when a chunk is converted: a frame no output picks
    (a 30 fps source gives the 3D branch 24 of every 30, the 2D branch 1) costs no export."""

    def __init__(self, spec: StreamSpec, info: VideoInfo, time_base: Fraction, device: torch.device) -> None:
        self.spec, self.device = spec, device
        self.picker = FpsPicker(Fraction(spec.fps), time_base, spec.round, FPS_START_TIME)
        self.width, self.height = spec.out_size(info)
        self.held: list[Any] = []
        self.colour = Colour()  # the video's, set from its first frame
        self.turn = 0  # the display matrix's quarter turn, likewise

    def pick(self, frame: Any | None, count: int) -> Iterator[torch.Tensor]:
        """`frame` makes `count` output frames: the chunks that completes."""
        for _ in range(count):
            assert frame is not None
            self.held.append(frame)
            if len(self.held) == self.spec.chunk:
                yield self.flush_held()

    def flush_held(self) -> torch.Tensor:
        held, self.held = self.held, []
        return self.convert(held)

    def convert(self, held: list[Any]) -> torch.Tensor:
        out = []
        group_size = max(1, CONVERT_BYTES // (3 * 4 * held[0].height * held[0].width))
        for start in range(0, len(held), group_size):
            group = [planes(frame) for frame in held[start : start + group_size]]
            # 10- to 16-bit planes widened first: torch's CUDA kernels cover few uint16 operations.
            y, u, v = (
                self._to_device(
                    torch.stack([p[k] if p[k].dtype == torch.uint8 else p[k].float() for p in group])
                )
                for k in range(3)
            )
            rgb = upright(yuv_to_rgb(y, u, v, self.colour), self.turn)
            out.append(resize_crop(rgb, self.width, self.height, self.spec.crop))
        return torch.cat(out) if len(out) > 1 else out[0]

    def _to_device(self, planes: torch.Tensor) -> torch.Tensor:
        """Planes onto the device: NVDEC's stay where they are; host planes (a stream NVDEC refused, a
        downloaded picture) are page-locked first, since a copy from pageable memory may wait for the
        stream's queued work, that is for the encoders' kernels, in every decoder thread."""
        if planes.device != self.device and self.device.type == "cuda":
            planes = planes.pin_memory()
        return planes.to(self.device, non_blocking=True)


class _DeviceProducer(decode_av._Producer):
    """decode_av's producer with the filter graph replaced by the fps pick and the torch steps."""

    def __init__(
        self,
        path: str,
        specs: Mapping[str, StreamSpec],
        info: VideoInfo,
        threads: int,
        hwaccel: str | None,
        device: torch.device,
    ) -> None:
        super().__init__(path, specs, info, threads, hwaccel)
        self.device = device

    def _decode(self) -> None:
        container, stream = decode_av._open(self.path, self.hwaccel, self.threads, keep_on_device=True)
        try:
            outputs = {
                key: _SpecFrames(spec, self.info, Fraction(stream.time_base), self.device)
                for key, spec in self.specs.items()
            }
            previous: Any | None = None  # the frame before: what each output's pick is about
            for frame in self._frames(container, stream):
                if frame.pts is None:
                    continue  # the fps filter drops a picture with no time stamp too
                if previous is None:
                    colour = Colour.of(
                        _COLORSPACES.get(int(frame.colorspace)),
                        int(frame.color_range) == _FULL_RANGE or frame.format.name.startswith("yuvj"),
                        sample_bits(frame),
                    )
                    for out in outputs.values():
                        out.colour, out.turn = colour, decode_av._quarter_turn(frame.rotation)
                for key, out in outputs.items():
                    count = out.picker.push(frame.pts, frame.duration or 0)
                    if count:  # most frames: no output finished, nothing to do
                        for chunk in out.pick(previous, count):
                            self._put((key, chunk))
                previous = frame
            if self.stop.is_set():
                return
            for key, out in outputs.items():
                for chunk in out.pick(previous, out.picker.end()):
                    self._put((key, chunk))
                if out.held:
                    self._put((key, out.flush_held()))
        finally:
            container.close()


def device_outputs(
    path: str,
    specs: Mapping[str, StreamSpec],
    info: VideoInfo,
    timeout_s: float,
    device: torch.device,
    hwaccel: str | None = None,
    threads: int = 1,
    report: DecodeReport | None = None,
) -> Iterator[tuple[str, torch.Tensor]]:
    """(key, uint8 (n, H, W, 3) tensor on `device`) for every spec, the file decoded once, on `hwaccel`
    ("cuda", "cuda:N") or on the CPU when None or refused; errors, time budget and frame-count checks as
    decode_av.stream_outputs."""
    producer = _DeviceProducer(path, specs, info, threads, hwaccel, device)
    yield from decode_av.consume(producer, specs, info, timeout_s, hwaccel, report)


def stream_outputs(
    path: str,
    specs: Mapping[str, StreamSpec],
    info: VideoInfo,
    timeout_s: float,
    threads: int = 1,
    hwaccel: str | None = None,
    report: DecodeReport | None = None,
) -> Iterator[tuple[str, Any]]:
    """decode.stream_outputs for "pyav-gpu": tensors on the `hwaccel` GPU; PyAV's CPU path (numpy chunks)
    when no GPU decoder is given (no GPU, or the CPU retry after NVDEC failed mid-stream)."""
    if not hwaccel:
        yield from decode_av.stream_outputs(path, specs, info, timeout_s, threads, None, report)
        return
    yield from device_outputs(path, specs, info, timeout_s, torch.device(hwaccel), hwaccel, threads, report)
