"""The packed stems' integer max pools, the separable torch passes and the one-pass C kernel (bf16 and
fp16), give ATen's max pool, value for value."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models import c_build, nonneg_pool
from models.cpu_precision import cpu_bf16_supported
from models.nonneg_pool import (
    NonNegativeMaxPool,
    nonnegative_max_pool,
    one_pass_available,
    one_pass_max_pool,
    poolable,
)
from models.packed import onednn_available, pack_for_onednn
from models.resnext3d import ResNeXt3D


def _relu_output(shape: tuple[int, ...], dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.relu(torch.randn(shape, generator=g)).to(dtype)
    memory = torch.channels_last_3d if x.dim() == 5 else torch.channels_last
    return x.contiguous(memory_format=memory)


def _aten(x: torch.Tensor, kernel: int, stride: int, padding: int) -> torch.Tensor:
    pool = F.max_pool3d if x.dim() == 5 else F.max_pool2d
    return pool(x, kernel, stride, padding)


ONE_PASS = pytest.mark.skipif(not one_pass_available(), reason="the C kernel needs gcc and AVX-512BW")
# The C kernel pools 16-bit floats only (fp32 is refused, a test below), so fp32 runs the separable path.
PATHS_AND_DTYPES = [
    pytest.param(False, dtype, id=f"separable-{name}")
    for dtype, name in ((torch.bfloat16, "bf16"), (torch.float32, "fp32"), (torch.float16, "fp16"))
] + [
    pytest.param(True, dtype, marks=ONE_PASS, id=f"one-pass-{name}")
    for dtype, name in ((torch.bfloat16, "bf16"), (torch.float16, "fp16"))
]


@pytest.mark.parametrize("one_pass,dtype", PATHS_AND_DTYPES)
@pytest.mark.parametrize(
    "shape",
    [(2, 8, 16, 14, 14), (3, 5, 7, 9, 11), (1, 3, 1, 2, 3), (2, 16, 28, 50), (2, 4, 5, 6), (1, 1, 1, 1)],
)
@pytest.mark.parametrize(
    "kernel,stride,padding", [(3, 2, 1), (3, 1, 1), (5, 2, 2), (1, 1, 0), (3, 3, 1), (5, 3, 2)]
)
def test_it_equals_atens_max_pool(
    one_pass: bool, dtype: torch.dtype, shape: tuple[int, ...], kernel: int, stride: int, padding: int
) -> None:
    x = _relu_output(shape, dtype)
    if min(shape[2:]) + 2 * padding < kernel:
        pytest.skip("no output at this size")
    expected = _aten(x, kernel, stride, padding)
    got = nonnegative_max_pool(x, kernel, stride, padding, one_pass=one_pass)
    assert got.shape == expected.shape
    assert torch.equal(got, expected)
    memory = torch.channels_last_3d if x.dim() == 5 else torch.channels_last
    assert got.is_contiguous(memory_format=memory)


def test_windows_at_the_edges_and_all_zero_windows() -> None:
    # Maxima at every border position, whole windows of zeros (the ReLU's common case), and negative
    # zeros: the integer order puts -0.0 below +0.0, which must still give a value equal to ATen's.
    x = torch.zeros(1, 2, 5, 7, 9)
    x[..., 0, 0, 0] = 3.0
    x[..., -1, -1, -1] = 2.0
    x[..., 2, :, 4] = 1.5
    x[:, 1, 1] = -0.0
    for dtype in (torch.bfloat16, torch.float32):
        y = x.to(dtype).contiguous(memory_format=torch.channels_last_3d)
        assert torch.equal(nonnegative_max_pool(y, 3, 2, 1, one_pass=False), _aten(y, 3, 2, 1))
    if one_pass_available():
        y = x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last_3d)
        assert torch.equal(one_pass_max_pool(y, 3, 2, 1), _aten(y, 3, 2, 1))


@ONE_PASS
def test_the_one_pass_kernel_at_the_stems_sizes_on_any_thread_count() -> None:
    # ResNeXt-101's stem output for 2 clips and ResNet-152's for 3 frames of a 16:9 video: wide rows, 64
    # channels, windows cut at every edge; the rows split between threads must not change a value.
    for shape in [(2, 64, 16, 56, 56), (3, 64, 112, 199)]:
        x = _relu_output(shape, torch.bfloat16, seed=1)
        expected = _aten(x, 3, 2, 1)
        before = torch.get_num_threads()
        try:
            for threads in (1, 2, 3):
                torch.set_num_threads(threads)
                assert torch.equal(one_pass_max_pool(x, 3, 2, 1), expected)
        finally:
            torch.set_num_threads(before)


@ONE_PASS
def test_the_one_pass_kernel_reads_any_memory_layout_and_refuses_what_it_does_not_pool() -> None:
    x = torch.relu(torch.randn(2, 8, 6, 9, 10)).to(torch.bfloat16)  # contiguous NCTHW, not channels-last
    assert torch.equal(one_pass_max_pool(x, 3, 2, 1), _aten(x, 3, 2, 1))
    with pytest.raises(ValueError, match="16-bit floats"):
        one_pass_max_pool(x.float(), 3, 2, 1)
    with pytest.raises(ValueError, match="centred windows"):
        one_pass_max_pool(x, 3, 2, 0)


def test_without_a_compiler_the_separable_passes_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CC", "no-such-compiler-here")
    monkeypatch.setenv("HOWTO_KERNEL_CACHE", str(tmp_path))  # nothing built before to load
    nonneg_pool.one_pass_kernel.cache_clear()
    nonneg_pool.one_pass_available.cache_clear()
    c_build._log_once.cache_clear()
    try:
        x = _relu_output((2, 8, 6, 9, 10), torch.bfloat16)
        with caplog.at_level("INFO", logger="models.c_build"):
            assert torch.equal(nonnegative_max_pool(x, 3, 2, 1), _aten(x, 3, 2, 1))
        assert not one_pass_available()
        assert "no C compiler" in caplog.text or "AVX-512BW" in caplog.text
        with pytest.raises(c_build.KernelUnavailable):
            one_pass_max_pool(x, 3, 2, 1)
        calls: list[int] = []
        monkeypatch.setattr(nonneg_pool, "one_pass_kernel", lambda: calls.append(1))
        nonnegative_max_pool(x, 3, 2, 1)
        assert not calls  # the verdict is kept: no compiler run at every pool
    finally:
        monkeypatch.undo()
        nonneg_pool.one_pass_kernel.cache_clear()
        nonneg_pool.one_pass_available.cache_clear()
        c_build._log_once.cache_clear()


def test_poolable_takes_only_centred_cubic_floor_mode_pools() -> None:
    assert poolable(nn.MaxPool3d(3, 2, 1))
    assert poolable(nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    assert not poolable(nn.MaxPool3d(3, 2, 0))  # not centred: a window may miss its centre tap
    assert not poolable(nn.MaxPool3d((1, 3, 3), 2, (0, 1, 1)))  # not cubic
    assert not poolable(nn.MaxPool2d(3, 2, 1, ceil_mode=True))
    assert not poolable(nn.MaxPool2d(3, 2, 1, dilation=2))
    assert not poolable(nn.MaxPool2d(3, 2, 1, return_indices=True))
    assert not poolable(nn.AvgPool2d(3, 2, 1))


def test_the_module_hands_other_inputs_to_atens_pool() -> None:
    pool = NonNegativeMaxPool(nn.MaxPool2d(3, 2, 1))
    contiguous = torch.relu(torch.randn(2, 4, 9, 9))  # NCHW: not channels-last
    assert torch.equal(pool(contiguous), F.max_pool2d(contiguous, 3, 2, 1))
    doubles = contiguous.double().contiguous(memory_format=torch.channels_last)
    assert torch.equal(pool(doubles), F.max_pool2d(doubles, 3, 2, 1))


@pytest.mark.skipif(not onednn_available(), reason="needs a CPU torch with oneDNN")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_packer_gives_the_stems_pool_to_it_and_keeps_the_features(dtype: torch.dtype) -> None:
    if dtype == torch.bfloat16 and not cpu_bf16_supported():
        pytest.skip("oneDNN packs bf16 only where the CPU has bf16 kernels")
    torch.manual_seed(0)
    net = ResNeXt3D(layers=(1, 1, 1, 1)).eval()
    packed = pack_for_onednn(net, dtype)
    assert isinstance(packed.net.maxpool, NonNegativeMaxPool)
    clips = torch.randint(0, 256, (2, 16, 32, 32, 3), dtype=torch.uint8)
    with torch.inference_mode():
        ours = packed(clips)
        packed.net.maxpool = packed.net.maxpool.pool  # ATen's pool in the same packed net
        atens = packed(clips)
    assert torch.equal(ours, atens)
