"""Which precision "auto" takes on a CPU: bf16 only where it measured clearly faster than fp32 here, since
native bf16 can be slower (an Intel Xeon VM without AMX: 0.55x fp32)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import models.cpu_precision as cpu_precision
import models.encoders as encoders
import models.train_loop as train_loop
from models.cpu_precision import BF16_MIN_SPEEDUP, CpuBf16, cpu_bf16_supported, measure_cpu_bf16
from models.encoders import pick_runtime
from models.train_loop import pick_precision

CPU = torch.device("cpu")
ZEN4 = CpuBf16(native=True, fp32_gflops=200.0, bf16_gflops=387.0)
XEON_VM_NO_AMX = CpuBf16(native=True, fp32_gflops=265.0, bf16_gflops=146.0)
AVX2_ONLY = CpuBf16(native=False)


def test_bf16_pays_only_when_native_and_clearly_faster() -> None:
    assert ZEN4.precision == "bf16" and ZEN4.speedup == pytest.approx(1.935)
    assert XEON_VM_NO_AMX.precision == "fp32" and not XEON_VM_NO_AMX.pays
    assert AVX2_ONLY.precision == "fp32" and AVX2_ONLY.speedup is None
    # A tie (or a gain within a shared machine's noise) is not worth bf16's rounding.
    at = 100.0 * BF16_MIN_SPEEDUP
    assert CpuBf16(True, 100.0, at).pays and not CpuBf16(True, 100.0, at - 1).pays


def test_the_verdict_says_what_it_measured_and_what_auto_takes() -> None:
    assert XEON_VM_NO_AMX.describe() == (
        "bf16 GEMM 0.55x fp32 here, 146 vs 265 GFLOP/s on oneDNN 1024^3: auto is fp32 (bf16 from 1.2x)"
    )
    assert ZEN4.describe().endswith("auto is bf16")
    assert AVX2_ONLY.describe() == "no native bf16 on this CPU: auto is fp32"


@pytest.mark.parametrize(
    ("verdict", "expected"), [(ZEN4, "bf16"), (XEON_VM_NO_AMX, "fp32"), (AVX2_ONLY, "fp32")]
)
def test_auto_follows_the_measurement_for_features_and_training(
    monkeypatch: pytest.MonkeyPatch, verdict: CpuBf16, expected: str
) -> None:
    monkeypatch.setattr(encoders, "cpu_bf16", lambda: verdict)
    monkeypatch.setattr(train_loop, "cpu_bf16", lambda: verdict)
    assert pick_runtime("cpu", "auto").precision == expected
    assert pick_precision(CPU, "auto") == expected
    # An explicit precision is taken as asked, also where it is the slower one.
    assert pick_runtime("cpu", "bf16").precision == "bf16" and pick_precision(CPU, "fp32") == "fp32"


def test_the_measurement_on_this_machine() -> None:
    verdict = measure_cpu_bf16(rounds=2, round_s=0.02)
    assert verdict.native == cpu_bf16_supported()
    if verdict.native:
        assert verdict.fp32_gflops > 1.0 and verdict.bf16_gflops > 1.0
        assert verdict.precision == (
            "bf16" if verdict.bf16_gflops >= BF16_MIN_SPEEDUP * verdict.fp32_gflops else "fp32"
        )
    else:
        assert (verdict.fp32_gflops, verdict.bf16_gflops, verdict.precision) == (0.0, 0.0, "fp32")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, list[int]]]:
    """A cache file of the test's own, and a measurement that counts its calls (this process's verdict is
    forgotten before and after, so other tests read the real one again)."""
    path = tmp_path / "cpu_precision.json"
    monkeypatch.setenv("HOWTO_CPU_PRECISION_CACHE", str(path))
    calls: list[int] = []
    monkeypatch.setattr(cpu_precision, "measure_cpu_bf16", lambda: calls.append(1) or ZEN4)
    # The cache is what these tests are about, on any CPU: an AVX2-only one answers fp32 before the cache.
    monkeypatch.setattr(cpu_precision, "cpu_bf16_supported", lambda: True)
    cpu_precision.cpu_bf16.cache_clear()
    yield path, calls
    cpu_precision.cpu_bf16.cache_clear()


def test_the_verdict_is_measured_once_per_machine_and_kept(
    cache: tuple[Path, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, calls = cache
    assert cpu_precision.cpu_bf16() == ZEN4 and len(calls) == 1
    entry = json.loads(path.read_text())[cpu_precision.machine_key()]
    assert (entry["fp32_gflops"], entry["bf16_gflops"], entry["native"]) == (200.0, 387.0, True)
    cpu_precision.cpu_bf16.cache_clear()  # a new process on the same machine: read, not measured
    assert cpu_precision.cpu_bf16() == ZEN4 and len(calls) == 1
    # Another machine (or torch, or thread count) measures again and keeps both.
    cpu_precision.cpu_bf16.cache_clear()
    monkeypatch.setattr(cpu_precision, "machine_key", lambda: "other machine")
    assert cpu_precision.cpu_bf16() == ZEN4 and len(calls) == 2
    assert len(json.loads(path.read_text())) == 2


@pytest.mark.parametrize("damage", ["{not json", "[]", '{"KEY": {"native": true}}', '{"KEY": "fp32"}'])
def test_a_damaged_cache_is_measured_again_and_rewritten(cache: tuple[Path, list[int]], damage: str) -> None:
    path, calls = cache
    path.write_text(damage.replace("KEY", cpu_precision.machine_key()))
    assert cpu_precision.cpu_bf16() == ZEN4 and len(calls) == 1
    assert json.loads(path.read_text())[cpu_precision.machine_key()]["bf16_gflops"] == 387.0


def test_an_unwritable_cache_still_gives_a_verdict(
    cache: tuple[Path, list[int]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("HOWTO_CPU_PRECISION_CACHE", str(blocker / "cpu_precision.json"))
    assert cpu_precision.cpu_bf16() == ZEN4


def test_a_process_without_bf16_kernels_takes_fp32_whatever_the_cache_says(
    cache: tuple[Path, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Zen 4 measured bf16 2.2x faster uncapped; the same machine under `--isa avx2` has no bf16 kernels,
    # and packing bf16 weights there fails, so the kept verdict must not be read.
    path, calls = cache
    path.write_text(
        json.dumps(
            {cpu_precision.machine_key(): {"native": True, "fp32_gflops": 172.0, "bf16_gflops": 384.0}}
        )
    )
    monkeypatch.setattr(cpu_precision, "cpu_bf16_supported", lambda: False)
    assert cpu_precision.cpu_bf16() == AVX2_ONLY and calls == []


def test_an_isa_cap_is_part_of_the_machine_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in cpu_precision.ISA_CAP_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    uncapped = cpu_precision.machine_key()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    capped = cpu_precision.machine_key()
    assert capped != uncapped and capped.endswith("|ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16")


def test_explicit_bf16_without_bf16_kernels_runs_unpacked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoders, "cpu_bf16_supported", lambda: False)
    rt = pick_runtime("cpu", "bf16")
    assert rt.precision == "bf16" and not rt.packed
    assert pick_runtime("cpu", "fp32").packed == encoders.onednn_available()
    with pytest.raises(ValueError, match="no bf16 kernels on this CPU"):
        pick_runtime("cpu", "bf16", packed=True)


_CAPPED_CHILD = """
import json, sys
import numpy as np, torch
from models.cpu_precision import cpu_bf16, cpu_bf16_supported
from models.encoders import encode, pick_runtime, prepare
from models.resnet2d import build_resnet152
torch.manual_seed(0)
net = build_resnet152(None)
frames = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
out = {"native": cpu_bf16_supported(), "verdict": cpu_bf16().precision}
for asked in ("auto", "bf16"):
    rt = pick_runtime("cpu", asked)
    feats = encode(prepare(net, rt), frames, rt)
    out[asked] = [rt.precision, rt.packed, bool(np.isfinite(feats).all()), list(feats.shape)]
print(json.dumps(out))
"""


def test_under_an_avx2_cap_auto_is_fp32_and_bf16_runs_unpacked(tmp_path: Path) -> None:
    # The bug this guards: `howto bench features --isa avx2` on a Zen 4 read the uncapped bf16 verdict and
    # failed in oneDNN's bf16 weight reorder. A real child process under the caps, with that verdict kept.
    import os
    import subprocess
    import sys

    from tasks.bench.isa import ISA_CAPS

    cache_file = tmp_path / "cpu_precision.json"
    env = {**os.environ, "HOWTO_CPU_PRECISION_CACHE": str(cache_file)}
    key = subprocess.run(
        [sys.executable, "-c", "from models.cpu_precision import machine_key; print(machine_key())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    cache_file.write_text(json.dumps({key: {"native": True, "fp32_gflops": 172.0, "bf16_gflops": 384.0}}))
    done = subprocess.run(
        [sys.executable, "-c", _CAPPED_CHILD],
        env={**env, **ISA_CAPS["avx2"]},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["native"] is False and out["verdict"] == "fp32"
    # auto: fp32, packed (oneDNN's AVX2 fp32 kernels); bf16 asked for: emulated, unpacked, finite features.
    assert out["auto"] == ["fp32", True, True, [2, 2048]]
    assert out["bf16"] == ["bf16", False, True, [2, 2048]]
