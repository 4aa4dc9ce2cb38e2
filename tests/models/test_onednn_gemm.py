"""fp32 GEMMs on oneDNN (models/onednn_gemm.py): the same products as torch's, in every operand layout; the
mode routes a training step's large fp32 GEMMs, forward and backward, and nothing else; the verdict is
measured once per machine and kept beside the CPU precision's."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
import torch

import models.onednn_gemm as onednn_gemm
import models.train_loop as train_loop
from models import cpu_precision
from models.embedding import build_model
from models.gemm_layout import RowMajorGemms
from models.losses import build_loss
from models.onednn_gemm import Fp32Gemm, OneDnnFp32Gemms, onednn_addmm, onednn_mm, routes
from models.packed import onednn_available

needs_onednn = pytest.mark.skipif(not onednn_available(), reason="torch built without oneDNN")


def _operand(rows: int, cols: int, row_major: bool, g: torch.Generator) -> torch.Tensor:
    """A (rows x cols) tensor laid out row by row, or column by column (a transposed contiguous one)."""
    if row_major:
        return torch.randn(rows, cols, generator=g)
    return torch.randn(cols, rows, generator=g).t()


@needs_onednn
@pytest.mark.parametrize("a_rows", [True, False])
@pytest.mark.parametrize("b_rows", [True, False])
def test_onednn_mm_is_torchs_product_in_every_layout(a_rows: bool, b_rows: bool) -> None:
    g = torch.Generator().manual_seed(1)
    a, b = _operand(37, 53, a_rows, g), _operand(53, 29, b_rows, g)
    bias = torch.randn(29, generator=g)
    out = onednn_mm(a, b)
    assert out.shape == (37, 29) and out.is_contiguous()
    torch.testing.assert_close(out, a @ b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(onednn_mm(a, b, bias), a @ b + bias, rtol=1e-5, atol=1e-5)


@needs_onednn
@pytest.mark.parametrize(
    ("bias_shape", "beta", "alpha"),
    [((29,), 1, 1), ((29,), 0.5, 2.0), ((37, 29), 1, 1), ((1, 29), -1.0, 0.25)],
)
def test_onednn_addmm_is_torchs_addmm(bias_shape: tuple[int, ...], beta: float, alpha: float) -> None:
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(37, 53, generator=g), torch.randn(29, 53, generator=g).t()
    bias = torch.randn(bias_shape, generator=g)
    torch.testing.assert_close(
        onednn_addmm(bias, a, b, beta=beta, alpha=alpha),
        torch.addmm(bias, a, b, beta=beta, alpha=alpha),
        rtol=1e-5,
        atol=1e-5,
    )


@needs_onednn
def test_onednn_addmm_with_beta_zero_does_not_read_the_bias() -> None:
    a, b = torch.randn(8, 5), torch.randn(5, 3)
    out = onednn_addmm(torch.full((3,), float("nan")), a, b, beta=0)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, a @ b, rtol=1e-5, atol=1e-5)


def test_only_large_fp32_cpu_gemms_are_routed() -> None:
    big_a, big_b = torch.empty(512, 1024), torch.empty(1024, 1024)  # 2^29 multiply-adds
    assert routes(big_a, big_b)
    assert not routes(torch.empty(255, 4096), torch.empty(4096, 4096))  # too few rows: the weight reorder
    assert not routes(torch.empty(448, 4096), torch.empty(4096, 256))  # the demo world's largest GEMM
    assert not routes(big_a.double(), big_b.double())
    assert not routes(big_a.bfloat16(), big_b.bfloat16())
    assert not routes(big_a.to("meta"), big_b.to("meta"))


def _linear_step(mode: contextlib.AbstractContextManager[object]) -> tuple[torch.Tensor, ...]:
    torch.manual_seed(3)
    layer = torch.nn.Linear(96, 80)
    x = torch.randn(300, 96, requires_grad=True)
    with mode:
        y = layer(x)
        (y * y).mean().backward()
    assert x.grad is not None and layer.weight.grad is not None and layer.bias.grad is not None
    return y.detach(), x.grad, layer.weight.grad, layer.bias.grad


@needs_onednn
def test_the_mode_routes_a_linear_layers_forward_and_both_gradients() -> None:
    mode = OneDnnFp32Gemms(min_rows=64, min_macs=1)
    routed = _linear_step(mode)
    # the forward's addmm, the input gradient's mm and the weight gradient's mm (its rows: 80 outputs)
    assert mode.routed == 3
    for ours, torchs in zip(routed, _linear_step(contextlib.nullcontext()), strict=True):
        torch.testing.assert_close(ours, torchs, rtol=1e-5, atol=1e-6)


def test_the_mode_leaves_other_gemms_to_torch() -> None:
    mode = OneDnnFp32Gemms()  # default sizes: this layer is too small
    kept = _linear_step(mode)
    assert mode.routed == 0
    for ours, torchs in zip(kept, _linear_step(contextlib.nullcontext()), strict=True):
        assert torch.equal(ours, torchs)
    a = torch.randn(300, 300, dtype=torch.float64)
    with OneDnnFp32Gemms(min_rows=1, min_macs=1) as wide:
        out = a @ a
    assert wide.routed == 0 and torch.equal(out, a @ a)


@needs_onednn
def test_a_training_step_runs_its_fp32_gemms_on_onednn_where_that_pays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """train_step enters the mode for fp32 on a CPU where the verdict says oneDNN pays, and the step's
    result is torch's to float32 rounding."""
    entered: list[OneDnnFp32Gemms] = []

    class Recorded(OneDnnFp32Gemms):
        def __init__(self) -> None:
            super().__init__(min_rows=64, min_macs=1)
            entered.append(self)

    monkeypatch.setattr(train_loop, "OneDnnFp32Gemms", Recorded)

    def one_step(pays: bool) -> dict[str, torch.Tensor]:
        monkeypatch.setattr(train_loop, "fp32_gemm", lambda: Fp32Gemm(100.0, 200.0 if pays else 100.0))
        torch.manual_seed(4)
        model = build_model("minilm", d=32, d_video=64, d_sentence=48)
        loss_fn = build_loss("max_margin", margin=0.2)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        g = torch.Generator().manual_seed(5)
        batch = train_loop.Batch(
            video=torch.randn(128, 64, generator=g),
            text=torch.randn(128, 48, generator=g),
            groups=torch.arange(128) // 4,
            order=torch.arange(128) % 4,
        )
        train_loop.train_step(model, loss_fn, optimizer, batch, torch.device("cpu"), precision="fp32")
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    torchs = one_step(pays=False)
    assert entered == []
    ours = one_step(pays=True)
    assert len(entered) == 1 and entered[0].routed >= 6  # video and text layers, forward and backward
    for name, value in ours.items():
        torch.testing.assert_close(value, torchs[name], rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize(
    ("device", "precision", "pays", "amx", "expected"),
    [
        ("cpu", "fp32", True, False, OneDnnFp32Gemms),
        ("cpu", "fp32", False, False, contextlib.nullcontext),
        ("cpu", "bf16", True, False, contextlib.nullcontext),  # bf16 GEMMs are oneDNN's already
        ("cpu", "bf16", True, True, RowMajorGemms),
        ("meta", "fp32", True, False, contextlib.nullcontext),
    ],
)
def test_the_trainer_picks_the_gemm_context_by_precision_and_verdict(
    monkeypatch: pytest.MonkeyPatch, device: str, precision: str, pays: bool, amx: bool, expected: type
) -> None:
    monkeypatch.setattr(train_loop, "amx_in_use", lambda: amx)
    monkeypatch.setattr(train_loop, "fp32_gemm", lambda: Fp32Gemm(100.0, 130.0 if pays else 110.0))
    assert type(train_loop.gemm_layout(torch.device(device), precision)) is expected


def test_the_verdict_needs_a_clear_gain() -> None:
    assert Fp32Gemm(200.0, 320.0).onednn_pays
    assert "on oneDNN: oneDNN 1.60x torch.mm" in Fp32Gemm(200.0, 320.0).describe()
    assert not Fp32Gemm(200.0, 220.0).onednn_pays  # 1.10x: within a shared machine's noise
    assert "on torch.mm" in Fp32Gemm(200.0, 220.0).describe()
    assert Fp32Gemm().speedup is None and not Fp32Gemm().onednn_pays
    assert "no oneDNN" in Fp32Gemm().describe()


@pytest.fixture
def cache_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cpu_precision.json"
    monkeypatch.setenv("HOWTO_CPU_PRECISION_CACHE", str(path))
    onednn_gemm.fp32_gemm.cache_clear()
    yield path
    onednn_gemm.fp32_gemm.cache_clear()


def test_the_verdict_is_measured_once_per_machine_and_kept_beside_the_precision(
    cache_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cpu_precision.remember_entry("another machine", {"native": True, "fp32_gflops": 1.0, "bf16_gflops": 2.0})
    measured: list[int] = []

    def measure() -> Fp32Gemm:
        measured.append(1)
        return Fp32Gemm(180.0, 360.0)

    monkeypatch.setattr(onednn_gemm, "measure_fp32_gemm", measure)
    assert onednn_gemm.fp32_gemm() == Fp32Gemm(180.0, 360.0)
    onednn_gemm.fp32_gemm.cache_clear()  # a new process of the same machine
    assert onednn_gemm.fp32_gemm() == Fp32Gemm(180.0, 360.0)
    assert measured == [1]
    entries = json.loads(cache_file.read_text(encoding="utf-8"))
    assert entries["another machine"]["bf16_gflops"] == 2.0  # the precision's entries are kept
    (key,) = (k for k in entries if k.startswith("fp32 GEMM backend|"))
    assert key.endswith(cpu_precision.machine_key())
    # A damaged entry is measured again and rewritten.
    entries[key]["onednn_gflops"] = "fast"
    cache_file.write_text(json.dumps(entries), encoding="utf-8")
    onednn_gemm.fp32_gemm.cache_clear()
    assert onednn_gemm.fp32_gemm() == Fp32Gemm(180.0, 360.0)
    assert measured == [1, 1]


@needs_onednn
def test_the_measurement_times_both_libraries() -> None:
    verdict = onednn_gemm.measure_fp32_gemm(rounds=1, round_s=0.01)
    assert verdict.mkl_gflops > 0 and verdict.onednn_gflops > 0
