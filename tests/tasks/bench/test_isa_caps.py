"""`--isa avx2`: a bench reruns itself with oneDNN, ATen and MKL capped, and the child really takes the
fp32 path an AVX2-only CPU takes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.bench.isa import ISA_CAPS, missing_caps

HOWTO = Path(sys.executable).with_name("howto")


def test_native_needs_no_caps_and_avx2_needs_all_three() -> None:
    assert missing_caps("native", {}) == {}
    assert set(missing_caps("avx2", {})) == {
        "ONEDNN_MAX_CPU_ISA",
        "ATEN_CPU_CAPABILITY",
        "MKL_ENABLE_INSTRUCTIONS",
    }
    assert missing_caps("avx2", dict(ISA_CAPS["avx2"])) == {}
    # A different cap already set is replaced, not trusted.
    assert missing_caps("avx2", {**ISA_CAPS["avx2"], "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}) == {
        "ONEDNN_MAX_CPU_ISA": "AVX2"
    }


def _howto(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ISA_CAPS["avx2"]}
    return subprocess.run(
        [str(HOWTO), *args], capture_output=True, text=True, env=env, timeout=600, check=False
    )


@pytest.mark.skipif(not HOWTO.exists(), reason="the howto script is not installed next to this python")
def test_bench_train_with_isa_avx2_runs_capped_in_fp32() -> None:
    done = _howto(
        "bench",
        "train",
        "--steps",
        "1",
        "--d",
        "16",
        "--videos",
        "2",
        "--clips",
        "4",
        "--device",
        "cpu",
        "--isa",
        "avx2",
        "--ceiling-seconds",
        "0.2",
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "--isa avx2: running again with ONEDNN_MAX_CPU_ISA=AVX2" in out
    # The child's own report: the caps it ran under, ATen dispatching AVX2 kernels, and no native bf16
    # (oneDNN reports none under the cap), so only fp32 was timed.
    assert "ISA caps: ONEDNN_MAX_CPU_ISA=AVX2, ATEN_CPU_CAPABILITY=avx2, MKL_ENABLE_INSTRUCTIONS=AVX2" in out
    assert "ATen kernels: AVX2" in out
    assert "native bf16: no" in out
    assert "  fp32:" in out and "  bf16:" not in out


@pytest.mark.parametrize("bench", ["features", "train"])
def test_isa_caps_refuse_a_cuda_device(bench: str) -> None:
    done = _howto("bench", bench, "--device", "cuda", "--isa", "avx2")
    assert done.returncode == 2
    assert "--isa avx2 caps CPU instructions: use it with --device cpu" in done.stderr
    assert "Traceback" not in done.stderr
