"""Row-major first operands for bf16 GEMMs (models/gemm_layout.py): which tensors get copied, that the
copy is exact, that the mode reaches the GEMMs autograd issues in the backward pass, and when the trainer
takes it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

import models.gemm_layout as gemm_layout
import models.train_loop as train_loop
from models.cpu_kernels import Kernel
from models.gemm_layout import RowMajorGemms, block_copy, column_major, needs_row_major, row_major_copy

BF16 = torch.bfloat16


def test_column_major_is_a_transposed_contiguous_tensor_only() -> None:
    a = torch.randn(6, 10)
    assert not column_major(a)
    assert column_major(a.t())
    assert not column_major(a[:, ::2])  # strided, neither layout
    assert not column_major(a[:1].t()[:1])  # a single element
    assert not column_major(torch.randn(2, 3, 4).transpose(0, 2))  # not 2D


@pytest.mark.parametrize("shape", [(7, 5), (64, 64), (130, 97), (3, 300)])
@pytest.mark.parametrize("copy", [row_major_copy, lambda a: block_copy(a, block_rows=16)])
def test_row_major_copy_is_exact_and_contiguous(
    shape: tuple[int, int], copy: Callable[[torch.Tensor], torch.Tensor]
) -> None:
    source = torch.randn(shape[1], shape[0]).to(BF16)
    a = source.t()
    copied = copy(a)
    assert copied.is_contiguous()
    assert torch.equal(copied, a.contiguous())


@pytest.fixture
def fresh_kernels(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """No transposing kernel compiled yet and no C kernel (as on a CPU without AVX-512BW); the (name,
    dynamic) of each compile asked for, in order."""
    monkeypatch.setattr(gemm_layout, "c_transpose_available", lambda: False)
    monkeypatch.setattr(gemm_layout, "_COMPILED", gemm_layout._Compiled())
    asked: list[tuple[str, bool]] = []
    real = gemm_layout.compiled_kernel

    def recording(
        name: str, fn: Kernel, probe: Callable[[Kernel], object], dynamic: bool = True
    ) -> Kernel | None:
        asked.append((name, dynamic))
        return real(name, fn, probe, dynamic=dynamic)

    monkeypatch.setattr(gemm_layout, "compiled_kernel", recording)
    return asked


def test_a_kernel_per_shape_then_one_for_any_size(
    monkeypatch: pytest.MonkeyPatch, fresh_kernels: list[tuple[str, bool]]
) -> None:
    """The first STATIC_SHAPES shapes get kernels compiled for their sizes, reused on the next copy of the
    same shape; a later shape gets the kernel for any size. Every copy is exact."""
    monkeypatch.setattr(gemm_layout, "STATIC_SHAPES", 2)
    for rows, cols in [(40, 24), (40, 24), (33, 17), (18, 50), (40, 24)]:
        a = torch.randn(rows, cols).to(BF16).t()
        assert torch.equal(row_major_copy(a), a.contiguous())
    assert fresh_kernels == [
        ("row-major copy 40x24", False),
        ("row-major copy 40x24", False),
        ("row-major copy 33x17", False),
        ("row-major copy", True),
        ("row-major copy 40x24", False),
    ]


def test_without_a_compiler_the_block_copy_runs_and_no_compile_is_retried(
    monkeypatch: pytest.MonkeyPatch, fresh_kernels: list[tuple[str, bool]]
) -> None:
    def failing(name: str, fn: Kernel, probe: Callable[[Kernel], object], dynamic: bool = True) -> None:
        fresh_kernels.append((name, dynamic))
        return None

    monkeypatch.setattr(gemm_layout, "compiled_kernel", failing)
    for rows in (30, 31):
        a = torch.randn(rows, 20).to(BF16).t()
        assert torch.equal(row_major_copy(a), a.contiguous())
    assert fresh_kernels == [("row-major copy 30x20", False)]


def test_other_dtypes_take_the_block_copy(fresh_kernels: list[tuple[str, bool]]) -> None:
    a = torch.randn(30, 20).t()
    assert torch.equal(row_major_copy(a), a.contiguous())
    assert fresh_kernels == []


needs_c_kernel = pytest.mark.skipif(
    not gemm_layout.c_transpose_available(), reason="the C transpose needs AVX-512BW and a C compiler"
)


@needs_c_kernel
@pytest.mark.parametrize("shape", [(32, 32), (64, 96), (2048, 4096), (33, 70), (100, 31), (5, 3), (1, 64)])
def test_the_c_transpose_is_exact_at_tile_multiples_and_at_ragged_edges(shape: tuple[int, int]) -> None:
    """Whole 32 x 32 tiles, rows or columns left over past the last tile, and matrices smaller than a tile;
    the values are bits (a NaN's payload, -0.0 and infinities come through unchanged)."""
    bits = torch.randint(
        -(2**15), 2**15, shape, dtype=torch.int16, generator=torch.Generator().manual_seed(1)
    )
    source = bits.view(BF16)
    copied = gemm_layout.c_transposed(source)
    assert copied.is_contiguous() and copied.shape == (shape[1], shape[0])
    assert torch.equal(copied.view(torch.int16), bits.t().contiguous())


@needs_c_kernel
def test_the_c_transpose_writes_an_unaligned_destination_with_plain_stores() -> None:
    """Streaming stores need 64-byte aligned rows: a destination 2 bytes past a line takes the other
    stores, and what lies around it is left alone."""
    source = torch.arange(64 * 96, dtype=torch.int16).view(64, 96)
    buffer = torch.full((96 * 64 + 2,), -1, dtype=torch.int16)
    gemm_layout.transpose_library().transpose16(source.data_ptr(), buffer[1:].data_ptr(), 64, 96, 2)
    assert torch.equal(buffer[1:-1].view(96, 64), source.t())
    assert buffer[0] == -1 and buffer[-1] == -1


@needs_c_kernel
def test_bf16_row_major_copies_take_the_c_kernel(
    fresh_kernels: list[tuple[str, bool]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the C kernel runs, no Inductor kernel is compiled for the copy."""
    monkeypatch.setattr(gemm_layout, "c_transpose_available", lambda: True)
    a = torch.randn(96, 40).to(BF16).t()
    assert torch.equal(row_major_copy(a), a.contiguous())
    assert fresh_kernels == []


def test_the_c_transpose_refuses_what_it_cannot_copy() -> None:
    with pytest.raises(ValueError, match="16-bit"):
        gemm_layout.c_transposed(torch.zeros(4, 4))
    with pytest.raises(ValueError, match="contiguous"):
        gemm_layout.c_transposed(torch.zeros(4, 6, dtype=BF16).t())


def test_only_large_column_major_bf16_cpu_operands_are_copied() -> None:
    big = torch.randn(2048, 1024).to(BF16)
    assert needs_row_major(big.t())
    assert not needs_row_major(big)  # already row-major
    assert not needs_row_major(big.float().t())  # fp32: the copy did not pay
    assert not needs_row_major(torch.randn(64, 64).to(BF16).t())  # too small to pay


def _linear_grads(mode: RowMajorGemms | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.randn(48, 40).to(BF16).requires_grad_()
    w = torch.randn(24, 40).to(BF16).requires_grad_()
    g = torch.randn(48, 24).to(BF16)
    if mode is None:
        y = torch.nn.functional.linear(x, w)
        y.backward(g)
    else:
        with mode:
            y = torch.nn.functional.linear(x, w)
            y.backward(g)
    assert x.grad is not None and w.grad is not None
    return y.detach(), x.grad, w.grad


def test_the_mode_copies_the_weight_gradients_operand_and_keeps_the_results() -> None:
    """dW = g^T @ x is the one GEMM of a Linear whose first operand is transposed: the mode sees it in the
    backward pass, and the products are the same up to the kernel's order of summation."""
    mode = RowMajorGemms(min_elements=1)
    y, gx, gw = _linear_grads(mode)
    assert mode.copies == 1
    y0, gx0, gw0 = _linear_grads(None)
    assert torch.equal(y, y0)
    assert torch.equal(gx, gx0)
    assert torch.allclose(gw.float(), gw0.float(), rtol=1e-2, atol=1e-2)


def test_the_mode_leaves_fp32_alone() -> None:
    mode = RowMajorGemms(min_elements=1)
    a = torch.randn(30, 20)
    with mode:
        out = a.t() @ a
    assert mode.copies == 0
    assert torch.equal(out, a.t() @ a)


@pytest.mark.parametrize(
    ("device", "precision", "amx", "expected"),
    [
        ("cpu", "bf16", True, True),
        ("cpu", "bf16", False, False),  # avx512_bf16 without AMX: both layouts ran at one speed
        ("cpu", "fp32", True, False),
        ("meta", "bf16", True, False),
    ],
)
def test_the_trainer_takes_the_mode_for_bf16_on_amx_only(
    monkeypatch: pytest.MonkeyPatch, device: str, precision: str, amx: bool, expected: bool
) -> None:
    monkeypatch.setattr(train_loop, "amx_in_use", lambda: amx)
    chosen = train_loop.gemm_layout(torch.device(device), precision)
    assert isinstance(chosen, RowMajorGemms) is expected
