"""Inference-only oneDNN form of the ResNet encoders: BatchNorm folded into each conv in fp32, weights cast
once to the compute dtype and prepacked, ReLU and the residual add fused into the conv that precedes them.

This is what inductor's freezing pass builds (`mkldnn._convolution_pointwise` on prepacked weights), done
once by hand so there is nothing to compile and any input shape runs (measured on a 2-core AVX-512-bf16
CPU, ResNet-152 bf16: eager with autocast reached ~19% of the bf16 matmul ceiling, a third of its time in
per-call weight reorders and in separate ReLU/add passes; this form does neither).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from models import amx_bottleneck
from models.bn_fold import fold_conv_bn
from models.nonneg_pool import NonNegativeMaxPool, poolable
from models.stem_windows import clip_windows, windows_kernel_available

_CONVS = (nn.Conv2d, nn.Conv3d)
_NORMS = (nn.BatchNorm2d, nn.BatchNorm3d)
PACKINGS_KEPT = 3  # weight packings kept per conv, one per frame size (ResNet-152 bf16: 120 MB each)


def onednn_available() -> bool:
    """True when this torch has the prepacked oneDNN conv ops (CPU builds with mkldnn)."""
    return bool(torch.backends.mkldnn.is_available()) and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


def merge_groups(weight: torch.Tensor, groups: int, width: int) -> tuple[torch.Tensor, int]:
    """A grouped conv's weights as the same conv with fewer, wider groups: each new group holds `merge`
    old ones side by side, reading its own input channels, with zero weights on the others' (a block-
    diagonal weight). The same products plus products with zero, so the same values up to the order of
    the additions. `merge` is the largest power of two that keeps a group at most `width` input channels
    wide; (weight, groups) come back unchanged where the groups are that wide already.

    Why: on AMX, oneDNN's grouped conv pads each group's output channels to a tile's 16 columns, so
    ResNeXt-101's groups of 4 channels ran at 168 GFLOP/s useful in bf16 (2-core Xeon, layer1's 32x4
    conv on 2 clips); merged into groups of 32 channels the same conv took 0.86 ms instead of 1.99.
    Without AMX (the same CPU under ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16, or fp32) merging was 1.2-4x
    slower, so only the AMX path asks for it (models/encoders.py).
    """
    out, in_per_group = weight.shape[0], weight.shape[1]
    merge = 1
    while groups % (merge * 2) == 0 and in_per_group * merge * 2 <= width:
        merge *= 2
    if merge == 1:
        return weight, groups
    out_per_group = out // groups
    merged = weight.new_zeros(out, in_per_group * merge, *weight.shape[2:])
    for g in range(groups):
        rows = slice(g * out_per_group, (g + 1) * out_per_group)
        place = (g % merge) * in_per_group  # where old group g's inputs sit in its merged group
        merged[rows, place : place + in_per_group] = weight[rows]
    return merged, groups // merge


class PackedConv(nn.Module):
    """conv(x) with BatchNorm folded in, an optional fused ReLU, or a fused `+ residual` then ReLU."""

    def __init__(
        self,
        conv: nn.Module,
        bn: nn.Module,
        dtype: torch.dtype,
        relu: bool,
        group_width: int | None = None,
        in_channels: int | None = None,
    ) -> None:
        """`group_width`: a grouped conv whose groups read fewer input channels than this runs as fewer,
        wider groups (merge_groups). `in_channels`: more input channels than the conv has, the extra
        ones zero-weighted (FoldedStem's padding)."""
        super().__init__()
        assert isinstance(conv, _CONVS) and isinstance(bn, _NORMS)
        w, b = fold_conv_bn(conv, bn)
        groups = int(conv.groups)  # type: ignore[arg-type]
        if group_width is not None:
            w, groups = merge_groups(w, groups, group_width)
        if in_channels is not None and in_channels > w.shape[1]:
            assert groups == 1, "zero input channels are for ungrouped convs"
            w = torch.cat([w, w.new_zeros(w.shape[0], in_channels - w.shape[1], *w.shape[2:])], dim=1)
        # Plain attributes, not parameters: this module is frozen, and `.to()` must not undo the cast.
        self.weight = w.detach().to(dtype).contiguous()
        self.bias = b.detach().to(dtype)
        self.padding, self.stride = list(conv.padding), list(conv.stride)  # type: ignore[arg-type]
        self.dilation, self.groups = list(conv.dilation), groups  # type: ignore[arg-type]
        self.unary = "relu" if relu else "none"
        self._packed: dict[tuple[int, ...], torch.Tensor] = {}

    def _packed_weight(self, x: torch.Tensor) -> torch.Tensor:
        # oneDNN picks some layers' weight layout from the frame size: a layout packed for another size
        # still runs, but is reordered on every call. So keep one packing per frame size, for the few sizes
        # in use (videos of 16:9, 4:3 and portrait interleave in the compute loop). The layout also depends
        # on whether the batch is a single row; PackedEncoder never lets one through (see there).
        key = tuple(x.shape[1:])
        packed = self._packed.pop(key, None)
        if packed is None:
            if len(self._packed) >= PACKINGS_KEPT:
                del self._packed[next(iter(self._packed))]  # the least recently used
            packed = torch.ops.mkldnn._reorder_convolution_weight(
                self.weight, self.padding, self.stride, self.dilation, self.groups, list(x.shape)
            )
        self._packed[key] = packed
        return packed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._convolution_pointwise(
            x, self._packed_weight(x), self.bias, self.padding, self.stride, self.dilation, self.groups,
            self.unary, [], "",
        )  # fmt: skip

    def add_relu(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """relu(conv(x) + residual), accumulated in place into `residual` (a block-internal tensor)."""
        return torch.ops.mkldnn._convolution_pointwise_.binary(
            residual, x, self._packed_weight(x), self.bias, self.padding, self.stride, self.dilation,
            self.groups, "add", 1.0, "relu", [], "",
        )  # fmt: skip


class PackedBottleneck(nn.Module):
    """A ResNet/ResNeXt bottleneck (conv1..bn3, optional conv+BN downsample) as three or four packed convs."""

    def __init__(
        self, block: Any, dtype: torch.dtype, group_width: int | None = None, amx_kernel: bool = False
    ) -> None:
        """`amx_kernel`: in bf16, conv1 and conv2 of a block the AMX kernel takes run there, fused
        (models/amx_bottleneck.py; the caller checks that the kernel runs here)."""
        super().__init__()
        self.c1 = PackedConv(block.conv1, block.bn1, dtype, relu=True)
        self.c2 = PackedConv(block.conv2, block.bn2, dtype, relu=True, group_width=group_width)
        self.c3 = PackedConv(block.conv3, block.bn3, dtype, relu=False)
        down = block.downsample
        self.down = None if down is None else PackedConv(down[0], down[1], dtype, relu=False)
        self.front: nn.Module | None = None
        if amx_kernel and dtype == torch.bfloat16 and amx_bottleneck.fits(block):
            self.front = amx_bottleneck.AmxBottleneckFront(block, fallback=nn.Sequential(self.c1, self.c2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.down is None else self.down(x)
        inner = self.c2(self.c1(x)) if self.front is None else self.front(x)
        return self.c3.add_relu(inner, residual)


class FoldedStem(nn.Module):
    """A 3D stem conv on few input channels (ResNeXt-101's 7x7x7 on RGB) with its kernel's width taps
    folded into the channels: conv(x) = conv'(windows(x)), where windows(x) holds, at each output column,
    the kw input columns it reads (kw * C values, contiguous in channels-last memory) and conv' is the
    same conv with a kernel of width 1 over kw * C channels. The same products and sums, so the same
    values up to the order of the additions (fp32: within 1e-5; a test).

    Why: with 3 input channels each kernel tap is a dot product of length 3, too short for the vector and
    matrix units, and oneDNN's direct kernel ran the stem at about half the rate of the 1x1 convs on AVX2;
    with 21 channels per tap it runs near the GEMM ceiling. Measured on 2 Zen 4 cores, one 2-clip chunk
    of 16x112x112: bf16 35.4 -> 28.9 ms, fp32 under an AVX2 cap 120.7 -> 63.5 ms, fp32 with AVX-512
    55.0 -> 59.8 ms. In the whole 3D encoder (32 clips, best of three, interleaved): bf16 1.07x, fp32 under
    AVX2 1.08x, fp32 with AVX-512 0.98x (noise on a shared machine); profiled under AVX2 the stem went from
    88 to 66 ms a chunk, the GEMM ceiling's rate. So the packed path always folds: nowhere slower by more
    than noise, and with 21 channels a tap instead of 3 it suits AMX's tiles (K of 32) far better; not
    measured there. The windows cost one strided copy of the input (about 0.5 ms a chunk).
    """

    def __init__(self, conv: nn.Module, bn: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        assert isinstance(conv, nn.Conv3d) and foldable_stem(conv)
        (kt, kh, kw), (st, sh, sw), (pt, ph, pw) = conv.kernel_size, conv.stride, conv.padding  # type: ignore[misc]
        out, channels = conv.out_channels, conv.in_channels
        folded = nn.Conv3d(
            channels * kw, out, (kt, kh, 1), (st, sh, 1), (pt, ph, 0), bias=conv.bias is not None
        )
        with torch.no_grad():
            # Channel j * C + c of a window is input channel c at kernel column j.
            folded.weight.copy_(conv.weight.permute(0, 4, 1, 2, 3).reshape(out, kw * channels, kt, kh, 1))
            if conv.bias is not None:
                folded.bias.copy_(conv.bias)  # type: ignore[union-attr]
        self.channels = folded_channels(kw * channels, dtype)
        self.conv = PackedConv(folded, bn, dtype, relu=True, in_channels=self.channels)
        self.kw, self.sw, self.pw = kw, sw, pw

    @property
    def weight(self) -> torch.Tensor:
        """The folded weights (their dtype is what the encoder casts its input to, as for a PackedConv)."""
        return self.conv.weight

    def windows(self, x: torch.Tensor) -> torch.Tensor:
        """(N, channels, T, H, W_out) in channels-last memory from (N, C, T, H, W): zero-padded along W,
        then each output column's kw input columns side by side (one strided view, copied once), then
        zero channels up to `channels` (folded_channels)."""
        n, c, t, h, w = x.shape
        padded, inside = self._padded(n, t, h, w, c, x.dtype, x.device)
        inside.copy_(x.permute(0, 2, 3, 4, 1))
        return self._gathered(padded)

    def forward_clips(self, clips: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        """The stem on uint8 (N, T, H, W, C) clips minus a per-channel `mean` (C values): forward() on
        (clips - mean) in NCTHW, the same bits. The subtraction writes straight into the padded buffer in
        the weights' dtype, one pass where the encoder's own normalisation took four (to float, minus the
        mean, to bf16, then the copy into the padding): on 2 Xeon cores with AMX those four were about 6%
        of a 32-clip 3D batch."""
        if self.weight.dtype == torch.bfloat16 and windows_kernel_available():
            windows = clip_windows(clips, mean, self.kw, self.sw, self.pw, self.channels)
            if windows is not None:  # one pass of our C kernel, the same bits (models/stem_windows.py)
                return self.conv(windows.permute(0, 4, 1, 2, 3))
        n, t, h, w, c = clips.shape
        padded, inside = self._padded(n, t, h, w, c, self.weight.dtype, clips.device)
        torch.sub(clips, mean.reshape(c).float(), out=inside)  # in float32, rounded once on the write
        return self.conv(self._gathered(padded))

    def _padded(
        self, n: int, t: int, h: int, w: int, c: int, dtype: torch.dtype, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """An (N, T, H, W + 2 pw, C) buffer with its pad columns zeroed, and the view of its inside."""
        padded = torch.empty(n, t, h, w + 2 * self.pw, c, dtype=dtype, device=device)
        padded[:, :, :, : self.pw].zero_()
        padded[:, :, :, self.pw + w :].zero_()
        return padded, padded[:, :, :, self.pw : self.pw + w]

    def _gathered(self, padded: torch.Tensor) -> torch.Tensor:
        """The windows of a padded (N, T, H, W', C) buffer, as windows() describes."""
        n, t, h, wide, c = padded.shape
        w_out = (wide - self.kw) // self.sw + 1
        view = padded.as_strided(
            (n, t, h, w_out, self.kw * c), (t * h * wide * c, h * wide * c, wide * c, self.sw * c, 1)
        )
        if self.channels == self.kw * c:
            return view.contiguous().permute(0, 4, 1, 2, 3)
        out = padded.new_empty(n, t, h, w_out, self.channels)
        out[..., self.kw * c :].zero_()
        out[..., : self.kw * c] = view
        return out.permute(0, 4, 1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.windows(x))


def folded_channels(channels: int, dtype: torch.dtype) -> int:
    """The channel count a FoldedStem's windows carry: in bf16 an even one (a zero channel after an odd
    count), because bf16 dot products (AMX tiles, avx512_bf16) take channels in pairs.

    Measured on a 2-core Xeon with AMX, ResNeXt-101's stem on 2 clips (21 channels a tap): 9.6 ms with
    21 channels, 6.1 ms with 22 (24: 5.7, 32: 6.0). Under ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 (no AMX,
    as on a Zen 4) 22 channels cost the same as 21 (54.4 vs 54.9 ms), 24 and 32 more (59, 79 ms); so
    even, not a larger multiple. fp32 keeps the count (no pairs)."""
    return channels + channels % 2 if dtype == torch.bfloat16 else channels


def foldable_stem(conv: nn.Module) -> bool:
    """A 3D conv FoldedStem can take: few input channels, a kernel wider than 1, no groups or dilation."""
    return (
        isinstance(conv, nn.Conv3d)
        and conv.groups == 1
        and tuple(conv.dilation) == (1, 1, 1)
        and conv.kernel_size[2] > 1
        and conv.in_channels * conv.kernel_size[2] <= 64
        and isinstance(conv.padding, tuple)
    )


def _is_bottleneck(m: nn.Module) -> bool:
    names = ("conv1", "bn1", "conv2", "bn2", "conv3", "bn3")
    return all(hasattr(m, n) for n in names) and hasattr(m, "downsample")


def _pack_children(
    parent: nn.Module, dtype: torch.dtype, fold_stem: bool, group_width: int | None, amx_kernel: bool
) -> None:
    children = list(parent.named_children())
    for i, (name, child) in enumerate(children):
        if _is_bottleneck(child):
            setattr(parent, name, PackedBottleneck(child, dtype, group_width, amx_kernel))
        elif isinstance(child, _CONVS) and i + 2 < len(children):
            # The stem: conv, BatchNorm, ReLU registered in that order and used only in that order (both
            # encoders); the ReLU is fused, so BN and ReLU become identities.
            (bn_name, bn), (relu_name, relu) = children[i + 1], children[i + 2]
            if isinstance(bn, _NORMS) and isinstance(relu, nn.ReLU):
                folded = fold_stem and foldable_stem(child)
                setattr(
                    parent,
                    name,
                    FoldedStem(child, bn, dtype) if folded else PackedConv(child, bn, dtype, True),
                )
                setattr(parent, bn_name, nn.Identity())
                setattr(parent, relu_name, nn.Identity())
                # The stem's max pool (both encoders') then sees only the fused ReLU's output, >= 0.
                if i + 3 < len(children) and poolable(children[i + 3][1]):
                    setattr(parent, children[i + 3][0], NonNegativeMaxPool(children[i + 3][1]))
        else:
            _pack_children(child, dtype, fold_stem, group_width, amx_kernel)


def front_chunks(rows: int, size: int = 2) -> list[tuple[int, int]]:
    """(start, stop) of consecutive chunks of `size` rows covering `rows` (>= 2); a remainder too small
    to stand alone joins the last chunk, so no chunk has a single row (see PackedEncoder)."""
    if rows < 2 or size < 2:
        raise ValueError(f"need at least 2 rows and chunks of at least 2, got {rows} rows, chunks of {size}")
    starts = list(range(0, rows, size))
    if rows - starts[-1] < 2:
        starts.pop()
    return [(a, b) for a, b in zip(starts, starts[1:] + [rows], strict=True)]


class PackedEncoder(nn.Module):
    """A packed encoder with two rules on batch shape, both from oneDNN's behaviour on CPU.

    One-row batches run as two copies of the row, keeping the first output. oneDNN lays out some 1x1
    convs' weights differently for a batch of one row (small frames: ResNeXt-101's layer3 at 2x7x7). The
    two layouts do not mix: packed at one row and run at 32, such a conv ran at half speed; packed at 2+
    rows and run at one, at a twentieth (fp32, AVX2, measured). One packing per frame size must therefore
    serve every batch size; a batch of one (a video's last frame or clip) costs a second row instead.

    An encoder with `front`/`back` halves runs its front in chunks of `front_rows` rows, as the model's
    `front_rows(dtype)` asks, and its back on the whole batch. The front's activations are large (the 3D
    stem's output is 12.8 MB per clip in fp32), so a batch of 32 clips streams them through memory at
    every layer, and its 1x1 convs and the 4-channel grouped conv ran memory-bound. Two clips at a time keep
    them in cache, while layer3 (after its first block) and layer4, whose frames are small and weights
    large, keep the whole batch.
    Measured on a 2-core Zen 4, the same weights interleaved: a batch of 32 clips in 2.41 -> 2.12 s in bf16
    and 5.71 -> 5.30 s in fp32 under AVX2. ResNet-152 gained nothing that way there (2.20 -> 2.22 s per 16
    frames), but on AMX in bf16, where its convs run 5x faster than in fp32, 8 frames at a time through
    layer2 made the batch 1.09x faster (models/resnet2d.py); so it splits in bf16 only.

    Rows are independent in every layer, so a row's features are the same whatever shares its batch or
    chunk; the chunking is fixed by the batch size, so a rerun gives the same bits.
    """

    def __init__(self, net: nn.Module, front_rows: int | None = None) -> None:
        super().__init__()
        self.net = net
        self.front_rows = front_rows

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 1:
            return self.forward(torch.cat([x, x]))[:1]
        if self.front_rows is None:
            return self.net(x)
        fronts = [self.net.front(x[a:b]) for a, b in front_chunks(x.shape[0], self.front_rows)]
        return self.net.back(fronts[0] if len(fronts) == 1 else torch.cat(fronts))


def pack_for_onednn(
    model: nn.Module,
    dtype: torch.dtype,
    fold_stem: bool = True,
    group_width: int | None = None,
    amx_kernel: bool = False,
) -> PackedEncoder:
    """A packed copy of an eval-mode encoder for CPU inference in `dtype` (the original is untouched);
    `fold_stem` (default): a 3D stem on few channels runs as a FoldedStem; `group_width`: grouped
    bottleneck convs merged into groups of up to that many input channels (merge_groups; the AMX path);
    `amx_kernel`: in bf16, the bottlenecks our AMX kernel takes run their first two convs there
    (models/amx_bottleneck.py; the caller checks that the kernel runs here).

    Every conv must end up packed (a leftover would meet an input of the wrong dtype): checked here.
    """
    if model.training:
        raise ValueError("pack_for_onednn needs an eval-mode model (BatchNorm statistics are folded)")
    packed = copy.deepcopy(model)
    _pack_children(packed, dtype, fold_stem, group_width, amx_kernel)
    left = [n for n, m in packed.named_modules() if isinstance(m, (*_CONVS, *_NORMS))]
    if left:
        raise ValueError(f"convs/norms the packer does not know how to fold: {left[:3]}")
    split = all(callable(getattr(packed, name, None)) for name in ("front", "back", "front_rows"))
    return PackedEncoder(packed, packed.front_rows(dtype) if split else None).eval()
