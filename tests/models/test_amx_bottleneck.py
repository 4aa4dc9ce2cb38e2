"""The AMX bottleneck kernel (models/amx_bottleneck.py): its weight layout everywhere; where the CPU has
AMX, its outputs against an fp32 reference, its scratch, its fallbacks and the whole 3D encoder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from models import amx_bottleneck
from models.amx_bottleneck import (
    AmxBottleneckFront,
    KernelUnavailable,
    build,
    fits,
    kernel,
    pack_1x1,
    pack_grouped,
)
from models.packed import PackedBottleneck, PackedConv, pack_for_onednn
from models.resnext3d import Bottleneck, ResNeXt3D


def _amx_reason() -> str | None:
    try:
        kernel()
    except KernelUnavailable as exc:
        return str(exc)
    return None


REASON = _amx_reason()
needs_amx = pytest.mark.skipif(REASON is not None, reason=f"the AMX kernel does not run here: {REASON}")


def _block(inplanes: int, planes: int, seed: int = 0) -> Bottleneck:
    """A ResNeXt bottleneck (cardinality 32) with BatchNorm statistics that make folding matter."""
    torch.manual_seed(seed)
    block = Bottleneck(inplanes, planes, cardinality=32).eval()
    for m in block.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return block


def _input(n: int, channels: int, t: int, h: int, w: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.relu(torch.randn(n, channels, t, h, w, generator=g)).to(torch.bfloat16)
    return x.contiguous(memory_format=torch.channels_last_3d)


def _reference(block: Bottleneck, x: torch.Tensor) -> torch.Tensor:
    """The front in fp32 on the same (bf16) input."""
    with torch.inference_mode():
        inner = torch.relu(block.bn1(block.conv1(x.float())))
        return torch.relu(block.bn2(block.conv2(inner)))


def _onednn(block: Bottleneck, x: torch.Tensor) -> torch.Tensor:
    c1 = PackedConv(block.conv1, block.bn1, torch.bfloat16, relu=True)
    c2 = PackedConv(block.conv2, block.bn2, torch.bfloat16, relu=True, group_width=32)
    with torch.inference_mode():
        return c2(c1(x))


def _relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.float() - want).abs().max() / want.abs().max())


# -- the weight layout: pure tensor code, checked on every machine -------------------------------------


def test_pack_1x1_puts_pairs_of_input_channels_side_by_side() -> None:
    weight = torch.arange(128 * 64, dtype=torch.float32).reshape(128, 64) / 1024  # exact in bf16
    tiles = pack_1x1(weight)
    assert tiles.shape == (2, 8, 16, 32) and tiles.dtype == torch.bfloat16
    for i, j, r, n in [(0, 0, 0, 0), (1, 7, 15, 15), (0, 3, 5, 9), (1, 2, 8, 1)]:
        # tile (i, j): B[k, n] = weight[16 j + n, 32 i + k]; row r holds B[2r, n], B[2r + 1, n] at 2n, 2n + 1
        assert tiles[i, j, r, 2 * n] == weight[16 * j + n, 32 * i + 2 * r].bfloat16()
        assert tiles[i, j, r, 2 * n + 1] == weight[16 * j + n, 32 * i + 2 * r + 1].bfloat16()


@pytest.mark.parametrize("width", [4, 8])
def test_pack_grouped_puts_each_tap_where_its_output_reads_it(width: int) -> None:
    channels = 32 * width
    weight = torch.randn(channels, width, 3, 3, 3)
    tiles = pack_grouped(weight, width)
    assert tiles.shape == (32, 9, 16, 32)
    # Unpair back to B[k, n] (32 x 16) per group and (dt, dh) tap.
    b = tiles.float().reshape(32, 9, 16, 16, 2).transpose(-1, -2).reshape(32, 9, 32, 16)
    outputs = 16 // width
    for g in (0, 5, 31):
        for dt, dh in ((0, 0), (1, 2), (2, 1)):
            m = b[g, dt * 3 + dh]
            for p in range(32 // width):
                for s in range(outputs):
                    block = m[p * width : (p + 1) * width, s * width : (s + 1) * width]  # ci x co
                    dw = p - s
                    if 0 <= dw <= 2:
                        want = weight[g * width : (g + 1) * width, :, dt, dh, dw].t().bfloat16().float()
                        assert torch.equal(block, want)
                    else:
                        assert not block.any()


def test_fits_takes_layer1_and_layer2_blocks_only() -> None:
    net = ResNeXt3D()
    taken = [fits(b) for layer in (net.layer1, net.layer2, net.layer3, net.layer4) for b in layer]
    # layer1's three blocks (groups of 4), layer2's blocks after its strided first one (groups of 8)
    assert taken == [True, True, True, False, True, True, True] + [False] * 26
    assert not fits(nn.Conv3d(128, 128, 3, padding=1, groups=32))  # not a bottleneck


# -- the kernel itself: where the CPU has AMX ------------------------------------------------------------


@pytest.fixture
def threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@needs_amx
@pytest.mark.parametrize(
    "inplanes,planes,shape",
    [
        (256, 128, (2, 8, 28, 28)),  # layer1 blocks 2-3 on a 2-clip chunk
        (64, 128, (2, 8, 28, 28)),  # layer1's first block: 64 channels in
        (512, 256, (2, 4, 14, 14)),  # layer2 blocks 2-4
        (256, 128, (3, 3, 5, 7)),  # 3 clips, an odd frame: partial tiles, a padded width of 12
        (512, 256, (1, 1, 4, 4)),  # one clip, one frame, one tile of positions
        (256, 128, (2, 2, 3, 50)),  # a wide frame: a padded width of 52
    ],
)
@pytest.mark.parametrize("thread_count", [1, 2, 3])
def test_the_front_matches_an_fp32_reference_as_closely_as_onednn(
    inplanes: int, planes: int, shape: tuple[int, int, int, int], thread_count: int, threads: None
) -> None:
    block = _block(inplanes, planes)
    n, t, h, w = shape
    x = _input(n, inplanes, t, h, w)
    torch.set_num_threads(thread_count)
    front = AmxBottleneckFront(block, fallback=nn.Identity())
    with torch.inference_mode():
        got = front(x)
    want = _reference(block, x)
    assert got.shape == want.shape and got.dtype == torch.bfloat16
    assert got.is_contiguous(memory_format=torch.channels_last_3d)
    ours, theirs = _relative_error(got, want), _relative_error(_onednn(block, x), want)
    assert ours < 0.01, ours  # bf16 rounding of conv1's output and of the result
    assert ours <= 1.5 * theirs + 1e-3, (ours, theirs)


@needs_amx
def test_rows_do_not_depend_on_the_thread_count_or_the_batch(threads: None) -> None:
    block = _block(256, 128)
    x = _input(3, 256, 4, 9, 11)
    front = AmxBottleneckFront(block, fallback=nn.Identity())
    with torch.inference_mode():
        torch.set_num_threads(1)
        one = front(x)
        torch.set_num_threads(2)
        two = front(x)
        alone = front(x[1:2].contiguous(memory_format=torch.channels_last_3d))
    assert torch.equal(one, two)
    assert torch.equal(alone, two[1:2])


@needs_amx
def test_garbage_left_in_the_scratch_never_reaches_the_output() -> None:
    # Tile rows read the ring's borders and slot tails with zero weights: they must hold zeros, as 0 x NaN
    # is NaN. Fill the kept scratch with NaN bf16 patterns (0xFF bytes) and compare with a clean run.
    block = _block(256, 128)
    x = _input(2, 256, 3, 5, 7)
    front = AmxBottleneckFront(block, fallback=nn.Identity())
    with torch.inference_mode():
        clean = front(x)
        amx_bottleneck._SCRATCH.buffer.fill_(0xFF)
        dirty = front(x)
    assert torch.isfinite(dirty.float()).all()
    assert torch.equal(clean, dirty)


@needs_amx
def test_frames_smaller_than_a_tile_go_to_the_fallback() -> None:
    block = _block(256, 128)
    fallback = nn.Sequential(
        PackedConv(block.conv1, block.bn1, torch.bfloat16, relu=True),
        PackedConv(block.conv2, block.bn2, torch.bfloat16, relu=True, group_width=32),
    )
    x = _input(2, 256, 2, 3, 5)  # 15 positions a frame
    with torch.inference_mode():
        assert torch.equal(AmxBottleneckFront(block, fallback=fallback)(x), fallback(x))


@needs_amx
def test_the_packed_3d_encoder_takes_it_and_keeps_its_features() -> None:
    torch.manual_seed(0)
    net = ResNeXt3D(layers=(2, 2, 1, 1)).eval()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.running_var.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    with_kernel = pack_for_onednn(net, torch.bfloat16, group_width=32, amx_kernel=True)
    without = pack_for_onednn(net, torch.bfloat16, group_width=32)
    fronts = [b.front for b in with_kernel.modules() if isinstance(b, PackedBottleneck)]
    assert [isinstance(f, AmxBottleneckFront) for f in fronts] == [True, True, False, True, False, False]
    clips = torch.randint(0, 256, (4, 16, 64, 64, 3), dtype=torch.uint8)
    with torch.inference_mode():
        want = torch.nn.functional.normalize(net(clips), dim=1)
        ours = torch.nn.functional.normalize(with_kernel(clips).float(), dim=1)
        theirs = torch.nn.functional.normalize(without(clips).float(), dim=1)
    ours_cos, theirs_cos = (ours * want).sum(1).min(), (theirs * want).sum(1).min()
    assert ours_cos >= 0.999, ours_cos
    assert ours_cos >= theirs_cos - 5e-4, (ours_cos, theirs_cos)


# -- building and refusing -------------------------------------------------------------------------------


def test_no_compiler_is_a_clear_refusal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CC", "no-such-compiler-here")
    with pytest.raises(KernelUnavailable, match="no C compiler"):
        build(tmp_path)


def test_a_compiler_that_fails_is_a_clear_refusal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    failing = tmp_path / "cc"
    failing.write_text(
        "#!/bin/sh\n[ \"$1\" = --version ] && echo fake 1.0 && exit 0\necho 'no AMX here' >&2\nexit 1\n"
    )
    failing.chmod(0o755)
    monkeypatch.setenv("CC", str(failing))
    with pytest.raises(KernelUnavailable, match="could not compile.*no AMX here"):
        build(tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*.so"))  # nothing half-built left to load


@pytest.mark.skipif(not os.access("/usr/bin/gcc", os.X_OK), reason="needs gcc")
def test_a_build_is_kept_and_reused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CC", raising=False)
    first = build(tmp_path)
    stamp = first.stat().st_mtime_ns
    again = build(tmp_path)
    assert again == first and again.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary folder left behind


def test_the_variable_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(amx_bottleneck.DISABLE_VARIABLE, "0")
    kernel.cache_clear()
    try:
        with pytest.raises(KernelUnavailable, match="turned off"):
            kernel()
        assert not amx_bottleneck.available()
    finally:
        monkeypatch.undo()
        kernel.cache_clear()
