"""Run a bench as a CPU with fewer instructions would: `--isa avx2` caps oneDNN, ATen's kernels and MKL at
AVX2 through their documented environment variables, so an AVX-512 bf16 machine measures the fp32 path an
AVX2-only machine takes (native bf16 is then off: oneDNN reports no bf16 kernels under the cap).

The variables are read once, when each library first runs: a process cannot cap itself after torch has
run a kernel, so the bench runs again in a child process with them set.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence

ISA_CAPS: dict[str, dict[str, str]] = {
    "native": {},
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
}


def missing_caps(isa: str, env: Mapping[str, str]) -> dict[str, str]:
    """The cap variables `isa` needs that `env` does not already hold."""
    return {k: v for k, v in ISA_CAPS[isa].items() if env.get(k) != v}


def rerun_capped(isa: str, argv: Sequence[str]) -> int:
    """Run `howto` with `argv` in a child whose environment caps the ISA; its exit code."""
    env = {**os.environ, **ISA_CAPS[isa]}
    code = "import sys; from flows.cli import main; sys.argv[0] = 'howto'; main()"
    return subprocess.run([sys.executable, "-c", code, *argv], env=env, check=False).returncode


def isa_line() -> str:
    """What this process's kernels may use, for the bench header: caps set and ATen's dispatch level."""
    # Here, not at the top: the CLI reads ISA_CAPS for its --help without loading torch.
    import torch

    from models.cpu_precision import ISA_CAP_VARIABLES  # the caps the precision verdict is kept per

    caps = {k: os.environ[k] for k in ISA_CAP_VARIABLES if k in os.environ}
    capped = ", ".join(f"{k}={v}" for k, v in caps.items()) or "none (native)"
    return f"ISA caps: {capped}; ATen kernels: {torch.backends.cpu.get_cpu_capability()}"
