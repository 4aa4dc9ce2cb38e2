"""The benches' compute ceiling: every CPU GEMM backend is measured on the same product, and the best wins."""

from __future__ import annotations

import pytest
import torch

from models.encoders import onednn_available
from tasks.bench import ceiling
from tasks.bench.ceiling import MM, ONEDNN, Ceiling, gemm_ceiling, onednn_gemm

needs_onednn = pytest.mark.skipif(not onednn_available(), reason="this torch has no oneDNN")


@needs_onednn
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_onednn_gemm_is_the_same_product_as_torch_mm(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    a, b = torch.randn(37, 19).to(dtype), torch.randn(19, 23).to(dtype)
    with torch.inference_mode():
        out = onednn_gemm(a, b)()
    assert out.shape == (1, 23, 1, 37)
    expected = (a.float() @ b.float()).to(dtype).float()
    tol = 1e-4 if dtype == torch.float32 else 5e-2
    torch.testing.assert_close(out.view(23, 37).t().float(), expected, rtol=tol, atol=tol * 10)


@needs_onednn
def test_a_cpu_ceiling_is_the_best_of_both_backends() -> None:
    measured = gemm_ceiling(256, 128, 64, torch.float32, seconds=0.05)
    assert set(measured.backends) == {MM, ONEDNN}
    assert all(rate > 0 for rate in measured.backends.values())
    assert measured.gflops == max(measured.backends.values())
    assert (
        measured.describe() == f"{MM} {measured.backends[MM]:.1f}, {ONEDNN} {measured.backends[ONEDNN]:.1f}"
    )


def test_without_onednn_only_torch_mm_is_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ceiling, "onednn_available", lambda: False)
    measured = gemm_ceiling(64, 64, 64, torch.float32, seconds=0.01)
    assert list(measured.backends) == [MM]


def test_the_ceiling_is_the_fastest_backend_not_the_first() -> None:
    assert Ceiling({MM: 180.0, ONEDNN: 210.0}).gflops == 210.0
    assert Ceiling({MM: 420.0, ONEDNN: 400.0}).gflops == 420.0
