"""8-bit YUV pictures to the encoders' RGB frames in torch, on whatever device holds them: the colour
conversion, turn upright, scale and centre crop that FFmpeg's filters do on the CPU (decode.branch_filters),
for frames NVDEC leaves in GPU memory (tasks/features/decode_device.py).

Every output is converted to RGB first and then scaled, the order of the 2D branch (rgb_first). Against
swscale in that order the frames are within about a level on average. The 3D branch scales in YUV on the
CPU, where swscale places chroma slightly differently whenever the chroma planes' scale factor differs from
luma's (an odd output height: 360x640 to 112x199 puts its own two orders 4.8 levels apart); there only the
features are held to the CPU path's, within a cosine of 0.99 (tests/tasks/features/test_decode_device.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Luma weights (Kr, Kb) of the colour matrices FFmpeg names (AVColorSpace). swscale takes BT.601 for a
# picture that names none (most H.264 from phones and YouTube's 360p say "unknown").
_MATRICES = {
    "bt709": (0.2126, 0.0722),
    "bt2020nc": (0.2627, 0.0593),
    "bt2020c": (0.2627, 0.0593),
    "fcc": (0.30, 0.11),
    "smpte240m": (0.212, 0.087),
}
_BT601 = (0.299, 0.114)


@dataclass(frozen=True)
class Colour:
    """How a picture's YUV maps to RGB: its matrix's luma weights and whether it uses the full 0-255 range
    (JPEG, "pc") or the limited one (16-235 luma, 16-240 chroma, "tv": nearly all video)."""

    kr: float = _BT601[0]
    kb: float = _BT601[1]
    full_range: bool = False
    bits: int = 8  # the bits a sample's value spans (10 for yuv420p10le; 16 for P010, high-bit aligned)

    @classmethod
    def of(cls, matrix: str | None, full_range: bool, bits: int = 8) -> Colour:
        kr, kb = _MATRICES.get((matrix or "").lower(), _BT601)
        return cls(kr, kb, full_range, bits)


def yuv_to_rgb(y: torch.Tensor, u: torch.Tensor, v: torch.Tensor, colour: Colour) -> torch.Tensor:
    """Integer planes Y (T, H, W), U and V (T, h, w) with h, w the luma's or half of it rounded up (4:4:4,
    4:2:2, 4:2:0), `colour.bits` deep -> float32 RGB (T, 3, H, W) in 0..255. Subsampled chroma is repeated over its block, as
    swscale's unscaled YUV to RGB converter does."""
    height, width = y.shape[-2:]
    to_8_bits = 1.0 / (1 << (colour.bits - 8))  # the limited range's 16..235 scale with the depth
    luma = y.float() * to_8_bits
    cb = _upsampled(u, height, width) * to_8_bits - 128.0
    cr = _upsampled(v, height, width) * to_8_bits - 128.0
    if not colour.full_range:
        luma = (luma - 16.0) * (255.0 / 219.0)
        cb, cr = cb * (255.0 / 224.0), cr * (255.0 / 224.0)
    kr, kb = colour.kr, colour.kb
    kg = 1.0 - kr - kb
    red = luma + 2.0 * (1.0 - kr) * cr
    blue = luma + 2.0 * (1.0 - kb) * cb
    green = luma - (2.0 * kb * (1.0 - kb) / kg) * cb - (2.0 * kr * (1.0 - kr) / kg) * cr
    return torch.stack([red, green, blue], dim=1).clamp_(0.0, 255.0)


def _upsampled(chroma: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(T, h, w) chroma repeated over its blocks (1 or 2 samples each way) to (T, height, width), float.
    NV12 as exported through DLPack has floor(W/2) chroma columns for an odd width: the last is repeated."""
    rows, cols = max(1, round(height / chroma.shape[-2])), max(1, round(width / chroma.shape[-1]))
    full = chroma.float()
    if rows > 1:
        full = full.repeat_interleave(rows, dim=-2)
    if cols > 1:
        full = full.repeat_interleave(cols, dim=-1)
    short_h, short_w = max(0, height - full.shape[-2]), max(0, width - full.shape[-1])
    if short_h or short_w:
        full = F.pad(full.unsqueeze(1), (0, short_w, 0, short_h), mode="replicate").squeeze(1)
    return full[..., :height, :width]


def upright(rgb: torch.Tensor, quarter_turn: int) -> torch.Tensor:
    """(T, 3, H, W) turned as ffmpeg's autorotation turns it: -90 (transpose=clock: a quarter turn
    clockwise), 90 (counter-clockwise) or 180; 0 leaves it."""
    if quarter_turn == -90:
        return torch.rot90(rgb, k=-1, dims=(2, 3))
    if quarter_turn == 90:
        return torch.rot90(rgb, k=1, dims=(2, 3))
    if quarter_turn == 180:
        return torch.flip(rgb, dims=(2, 3))
    return rgb


def resize_crop(rgb: torch.Tensor, width: int, height: int, crop: int | None) -> torch.Tensor:
    """float RGB (T, 3, H, W) scaled to width x height (bicubic, antialiased when shrinking, as swscale's
    bicubic widens its filter) and centre-cropped to crop x crop at ffmpeg's offsets -> uint8 (T, h, w, 3)."""
    if rgb.shape[-2:] != (height, width):
        rgb = F.interpolate(rgb, size=(height, width), mode="bicubic", align_corners=False, antialias=True)
    if crop:
        x, y = int((width - crop) / 2), int((height - crop) / 2)
        rgb = rgb[:, :, y : y + crop, x : x + crop]
    return rgb.round_().clamp_(0.0, 255.0).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
