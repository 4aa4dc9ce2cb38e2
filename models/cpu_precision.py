"""Whether bf16 pays on this CPU: measured, not read off the CPU flags.

avx512_bf16 says that a CPU *has* bf16 dot products, not that they are faster than fp32. On an AMD Zen 4
oneDNN's bf16 GEMM runs at about twice its fp32 rate, and with AMX at several times. On an Intel Xeon with
avx512_bf16 and avx512_fp16 but no AMX in sight (a virtual machine that does not pass AMX through) the
same bf16 GEMM ran at 0.55x fp32 (146 vs 265 GFLOP/s), and the encoders in bf16 at half the fp32 path's
speed. So "auto" takes bf16 on a CPU only where a short GEMM in both precisions, run now, says it is
clearly faster. The verdict is kept per machine in the user cache.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import tempfile
import time
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from models.gemm_rate import gemm_rate, onednn_gemm
from models.packed import onednn_available

log = logging.getLogger(__name__)

# bf16 rounds every activation to 8 bits of mantissa: worth it only for a clear gain, and the margin keeps
# a noisy measurement on a shared machine from flipping the choice between runs where the two are close.
BF16_MIN_SPEEDUP = 1.2
GEMM_SIDE = 1024  # 2.1 GFLOP a run: 5-20 ms on two cores, long enough to time, short enough to repeat
_CPU = torch.device("cpu")


def cpu_bf16_supported() -> bool:
    """True when oneDNN has native bf16 kernels on this CPU (avx512_bf16 / AMX); emulated bf16 is slower."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@dataclass(frozen=True)
class CpuBf16:
    """Native bf16 or not, and when native, oneDNN's GEMM rate in each precision measured here."""

    native: bool
    fp32_gflops: float = 0.0
    bf16_gflops: float = 0.0

    @property
    def speedup(self) -> float | None:
        """bf16's rate over fp32's; None where bf16 is not native (and was not measured)."""
        if not self.native or self.fp32_gflops <= 0:
            return None
        return self.bf16_gflops / self.fp32_gflops

    @property
    def pays(self) -> bool:
        return (self.speedup or 0.0) >= BF16_MIN_SPEEDUP

    @property
    def precision(self) -> str:
        """What "auto" runs on this CPU."""
        return "bf16" if self.pays else "fp32"

    def describe(self) -> str:
        if self.speedup is None:
            return "no native bf16 on this CPU: auto is fp32"
        return (
            f"bf16 GEMM {self.speedup:.2f}x fp32 here, {self.bf16_gflops:.0f} vs {self.fp32_gflops:.0f} "
            f"GFLOP/s on oneDNN {GEMM_SIDE}^3: auto is {self.precision}"
            + ("" if self.pays else f" (bf16 from {BF16_MIN_SPEEDUP:.1f}x)")
        )


def measure_cpu_bf16(rounds: int = 3, round_s: float = 0.05) -> CpuBf16:
    """Time the same GEMM in fp32 and bf16, interleaved, and keep each precision's best round: a burst of
    other work on a shared machine then slows one round, not one precision."""
    if not cpu_bf16_supported() or not onednn_available():
        return CpuBf16(native=False)
    flop = 2.0 * GEMM_SIDE**3
    runs = {}
    with torch.inference_mode():
        for dtype in (torch.float32, torch.bfloat16):
            a = torch.randn(GEMM_SIDE, GEMM_SIDE, dtype=dtype)
            runs[dtype] = onednn_gemm(a, torch.randn(GEMM_SIDE, GEMM_SIDE, dtype=dtype))
        best = dict.fromkeys(runs, 0.0)
        for _ in range(rounds):
            for dtype, run in runs.items():
                best[dtype] = max(best[dtype], gemm_rate(run, flop, round_s, _CPU))
    return CpuBf16(native=True, fp32_gflops=best[torch.float32], bf16_gflops=best[torch.bfloat16])


# The documented variables that cap which instructions oneDNN, ATen and MKL use (`howto bench --isa avx2`
# sets them): a process under a cap runs other kernels than one without, on the same CPU.
ONEDNN_CAP_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
ISA_CAP_VARIABLES = (*ONEDNN_CAP_VARIABLES, "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")

# oneDNN cap values that leave every ISA allowed; any other cap allows AMX only if its name says AMX.
_UNCAPPED = ("", "ALL", "DEFAULT")


@functools.cache
def cpu_flags() -> tuple[str, ...]:
    """The CPU's flags from /proc/cpuinfo (empty where it is not readable); read once per process."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return tuple(
                next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), [])
            )
    except OSError:
        return ()


def has_avx512bw() -> bool:
    """Whether the CPU has AVX-512F and AVX-512BW: what our C kernels' vector paths are built for (every CPU
    with AMX has both)."""
    return {"avx512f", "avx512bw"} <= set(cpu_flags())


def amx_in_use(flags: Collection[str] | None = None, env: Mapping[str, str] | None = None) -> bool:
    """True when oneDNN runs bf16 on AMX tiles here: the CPU has amx_bf16 and amx_tile (which a VM may
    hide) and no ISA cap in the environment stops short of AMX. Some layer forms pay only there (see
    models/packed.py merge_groups), so the packed path asks. `flags`, `env`: this machine's by default."""
    flags = cpu_flags() if flags is None else flags
    env = os.environ if env is None else env
    if not {"amx_bf16", "amx_tile"} <= set(flags):
        return False
    caps = [env.get(name, "").strip().upper() for name in ONEDNN_CAP_VARIABLES]
    return all(cap in _UNCAPPED or "AMX" in cap for cap in caps)


def machine_key() -> str:
    """What the verdict depends on: the CPU model and its AVX/AMX flags, torch's version (and so oneDNN's),
    the thread count and any ISA cap in the environment (a VM moved to another host, an upgraded torch, or a
    capped process measures again)."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            model = next(
                (line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), model
            )
    except OSError:
        pass
    flags = sorted(f for f in cpu_flags() if f.startswith(("avx", "amx")))
    caps = [f"{name}={os.environ[name]}" for name in ISA_CAP_VARIABLES if os.environ.get(name)]
    return "|".join([model, " ".join(flags), torch.__version__, str(torch.get_num_threads()), *caps])


def cache_path() -> Path:
    """$HOWTO_CPU_PRECISION_CACHE, else the user cache (~/.cache/howto/cpu_precision.json)."""
    env = os.environ.get("HOWTO_CPU_PRECISION_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "howto" / "cpu_precision.json"


def cached_entry(key: str) -> dict[str, Any] | None:
    """The cache file's entry for `key`; None where there is none, or the file or entry is damaged."""
    try:
        entry = json.loads(cache_path().read_text(encoding="utf-8")).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    return entry if isinstance(entry, dict) else None


def remember_entry(key: str, fields: Mapping[str, Any]) -> None:
    """Add this machine's `fields` under `key` to the cache file (written whole to a temp file, then
    renamed), with the time they were measured."""
    path = cache_path()
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        entries = entries if isinstance(entries, dict) else {}
    except (OSError, ValueError):
        entries = {}
    entries[key] = {**fields, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=".tmp-", delete=False) as tmp:
            json.dump(entries, tmp, indent=1, sort_keys=True)
        os.replace(tmp.name, path)
    except OSError as exc:  # a read-only home: the verdict still holds for this process
        log.debug("CPU measurements not cached at %s: %s", path, exc)


def _cached(key: str) -> CpuBf16 | None:
    entry = cached_entry(key)
    if entry is None:
        return None  # none yet: measured and written
    try:
        return CpuBf16(bool(entry["native"]), float(entry["fp32_gflops"]), float(entry["bf16_gflops"]))
    except (TypeError, KeyError, ValueError):
        return None  # a damaged entry: measured again and rewritten


@functools.cache
def cpu_bf16() -> CpuBf16:
    """This machine's verdict: measured once (about 0.3 s) and kept in the user cache, so that every process
    of a machine (a deployment's many workers, a resumed run) takes the same precision rather than each
    measuring anew under whatever load it meets. Where oneDNN has no bf16 kernels in this process (a CPU
    without them, or one capped below them) the answer is fp32 whatever a cache says: packing bf16 weights
    there fails."""
    if not cpu_bf16_supported():
        return CpuBf16(native=False)
    key = machine_key()
    verdict = _cached(key)
    if verdict is None:
        verdict = measure_cpu_bf16()
        remember_entry(key, asdict(verdict))
        log.info("CPU precision: %s (measured; kept in %s)", verdict.describe(), cache_path())
    return verdict
