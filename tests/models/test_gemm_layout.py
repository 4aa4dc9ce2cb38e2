"""Row-major first operands for bf16 GEMMs (models/gemm_layout.py): which tensors get copied, that the
copy is exact, that the mode reaches the GEMMs autograd issues in the backward pass, and when the trainer
takes it."""

from __future__ import annotations

import pytest
import torch

import models.train_loop as train_loop
from models.gemm_layout import RowMajorGemms, column_major, needs_row_major, row_major_copy

BF16 = torch.bfloat16


def test_column_major_is_a_transposed_contiguous_tensor_only() -> None:
    a = torch.randn(6, 10)
    assert not column_major(a)
    assert column_major(a.t())
    assert not column_major(a[:, ::2])  # strided, neither layout
    assert not column_major(a[:1].t()[:1])  # a single element
    assert not column_major(torch.randn(2, 3, 4).transpose(0, 2))  # not 2D


@pytest.mark.parametrize("shape", [(7, 5), (64, 64), (130, 97), (3, 300)])
def test_row_major_copy_is_exact_and_contiguous(shape: tuple[int, int]) -> None:
    source = torch.randn(shape[1], shape[0]).to(BF16)
    a = source.t()
    copied = row_major_copy(a, block_rows=16)
    assert copied.is_contiguous()
    assert torch.equal(copied, a.contiguous())


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
