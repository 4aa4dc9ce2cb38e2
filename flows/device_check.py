"""The GPU checks of the feature and training benches as one prepared run, for a GPU machine lent for minutes.

Such a machine (see README, "Measuring on a GPU machine") has torch, numpy, pyarrow and typer, but no ffmpeg
executable, no Prefect and no DuckDB, and nothing can be installed there from the network. So this mounts
only the two bench commands (`flows/cli_features.py`, `flows/cli_train.py`, which need none of those; the
benches decode and make their test video through PyAV), and the few wheels they need besides travel with
the tree (`make device-wheels`). Each check runs in a process of its own under its own time limit, so a
check that hangs or fails (a first run of untested CUDA code) still leaves the others' numbers; every
check's output is written to a log in the output folder as it comes and echoed.

    python3 -m flows.device_check OUT [--device cuda] [--seconds 30] [--only CHECK ...] [--cpu-cores 2]
        [--limit NAME=S]

CHECK: features, train (the default pair, on the device), features-gpu-decode (features with NVDEC's frames
kept on the GPU), features-cpu, train-cpu (the host's CPU, pinned).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import typer


@dataclass(frozen=True)
class Check:
    """One bench command line (after `howto`) and the seconds it may take."""

    name: str
    argv: tuple[str, ...]
    limit_s: float
    cores: int | None = None  # run pinned to this many of the machine's cores (and as many threads)


def checks(device: str, seconds: int, cpu_cores: int = 2) -> list[Check]:
    """The checks issue 20 asks for on a GPU: feature extraction end to end (decode included) against the
    reference extractor's way and the bf16 ceiling, then training in fp32 and bf16 against their ceilings.
    The limits leave a 10-minute call room for the environment line and the machine's start.

    Then the same two benches on the host's CPU pinned to `cpu_cores` cores (the issue's CPU figures are
    for 2 cores): a GPU machine's host is often the only AMX CPU at hand. They run only when asked for
    (`--only features-cpu`, ...): all four do not fit one 10-minute call."""
    return [
        Check("features", ("bench", "features", "--device", device, "--seconds", str(seconds)), 420.0),
        Check("train", ("bench", "train", "--device", device), 120.0),
        # NVDEC's frames kept on the GPU and converted there in torch (features.decoder=pyav-gpu), against
        # the stage's default decoding in the `features` check: run the two in one call.
        Check(
            "features-gpu-decode",
            ("bench", "features", "--device", device, "--seconds", str(seconds), "--decoder", "pyav-gpu"),
            300.0,
        ),
        Check(
            "features-cpu",
            ("bench", "features", "--device", "cpu", "--seconds", str(seconds), "--profile"),
            420.0,
            cpu_cores,
        ),
        Check("train-cpu", ("bench", "train", "--device", "cpu"), 150.0, cpu_cores),
    ]


CHECK_NAMES = [c.name for c in checks("cuda", 1)]
DEFAULT_CHECKS = ("features", "train")


def first_cores(count: int) -> list[int]:
    """The first `count` cores this process may run on; ValueError when it may run on fewer."""
    usable = sorted(os.sched_getaffinity(0))
    if count > len(usable):
        raise ValueError(f"{count} cores asked for, this process may run on {len(usable)}")
    return usable[:count]


def _pinned_env(cores: list[int]) -> dict[str, str]:
    """The environment of a pinned check: one OpenMP thread per core (torch and oneDNN read it at start)."""
    return {**os.environ, "OMP_NUM_THREADS": str(len(cores)), "MKL_NUM_THREADS": str(len(cores))}


def bench_app() -> typer.Typer:
    """`bench features` and `bench train` as the `howto` command mounts them, and nothing else."""
    from flows import cli_features, cli_train
    from flows.cli_common import bench_app as benches
    from flows.cli_errors import HowtoGroup

    # HowtoGroup: expected failures (no such device, ...) as `howto` reports them, one line and exit 2.
    app = typer.Typer(
        cls=HowtoGroup, add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True
    )
    cli_features.register(app)
    cli_train.register(app)
    app.add_typer(benches, name="bench")
    return app


def environment() -> str:
    """Python, torch, its CUDA and the devices it sees, and the driver's view (nvidia-smi) where there is one."""
    import torch

    lines = [f"python {platform.python_version()}; torch {torch.__version__}, CUDA {torch.version.cuda}"]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            lines.append(
                f"cuda:{i} {p.name}, {p.total_memory / 2**30:.0f} GiB, compute capability {p.major}.{p.minor}"
            )
    else:
        lines.append("torch sees no CUDA device")
    try:
        smi = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
        lines.append(smi.stdout.strip() or smi.stderr.strip())
    except (OSError, subprocess.TimeoutExpired) as exc:
        lines.append(f"nvidia-smi: {exc}")
    return "\n".join(lines)


def run_check(check: Check, out: Path, command: list[str] | None = None) -> tuple[int | None, float]:
    """Run one check in a child process (`command` instead of the bench, for tests), its output into
    `out/<name>.log` and onto stdout as it comes; (exit status, or None when it ran past its limit and was
    killed; seconds taken)."""
    log_path = out / f"{check.name}.log"
    cmd = command or [sys.executable, "-u", "-m", "flows.device_check", "--run", *check.argv]
    cores = first_cores(check.cores) if check.cores else None
    start = time.monotonic()
    with log_path.open("w") as log:
        log.write(f"$ howto {' '.join(check.argv)}\n")
        if cores is not None:
            log.write(f"-- pinned to cores {cores}, OMP_NUM_THREADS={len(cores)}\n")
        log.flush()
        # A session of its own: past its limit the whole group goes (the bench's worker processes and
        # decoders too, which would otherwise hold the output pipe open). A pinned check's affinity is set
        # before it starts, so its threads and every process it starts inherit it.
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            env=None if cores is None else _pinned_env(cores),
            preexec_fn=None if cores is None else (lambda: os.sched_setaffinity(0, cores)),
        )
        assert proc.stdout is not None
        timer = _Killer(proc, check.limit_s)
        for line in proc.stdout:
            log.write(line)
            log.flush()
            print(f"[{check.name}] {line}", end="", flush=True)
        rc = proc.wait()
        timer.cancel()
        if timer.fired:
            log.write(f"-- killed after its limit of {check.limit_s:.0f} s\n")
    return (None if timer.fired else rc), time.monotonic() - start


class _Killer:
    """Kills a process and its process group once it has run `limit_s` seconds."""

    def __init__(self, proc: subprocess.Popen[str], limit_s: float) -> None:
        self.fired = False
        self._proc = proc
        self._timer = threading.Timer(limit_s, self._kill)
        self._timer.daemon = True
        self._timer.start()

    def _kill(self) -> None:
        if self._proc.poll() is None:
            self.fired = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)

    def cancel(self) -> None:
        self._timer.cancel()


def _limits(given: list[str], parser: argparse.ArgumentParser) -> dict[str, float]:
    """`--limit NAME=SECONDS` values by check name; a bad one is a usage error (exit 2)."""
    names = set(CHECK_NAMES)
    limits = {}
    for item in given:
        name, _, seconds = item.partition("=")
        try:
            value = float(seconds)
        except ValueError:
            value = 0.0
        if name not in names or value <= 0:
            parser.error(f"--limit {item}: want NAME=SECONDS with NAME one of {', '.join(sorted(names))}")
        limits[name] = value
    return limits


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--run"]:  # a child: one bench command
        bench_app()(args[1:], prog_name="howto")
        return 0
    parser = argparse.ArgumentParser(
        prog="python3 -m flows.device_check",
        description="Run the GPU checks of the feature and training benches, each under its own time "
        "limit, writing env.txt and one log per check into OUT.",
    )
    parser.add_argument("out", type=Path, help="folder for env.txt and the checks' logs (made if missing)")
    parser.add_argument("--device", default="cuda", help="the device to bench (default: cuda)")
    parser.add_argument("--seconds", type=int, default=30, help="length of the test video (default: 30)")
    parser.add_argument(
        "--only",
        action="append",
        choices=CHECK_NAMES,
        help="run this check (repeatable); default: features and train on the device. features-cpu and "
        "train-cpu run the same benches on the host's CPU pinned to --cpu-cores cores",
    )
    parser.add_argument(
        "--cpu-cores",
        type=int,
        default=2,
        help="cores the -cpu checks are pinned to (default: 2, the cores of the issue's CPU figures)",
    )
    parser.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="NAME=SECONDS",
        help="another time limit for a check, e.g. --limit features=500 (a first compile on a slow host)",
    )
    ns = parser.parse_args(args)
    limits = _limits(ns.limit, parser)
    wanted = set(ns.only or DEFAULT_CHECKS)
    if any(c.cores for c in checks(ns.device, ns.seconds, ns.cpu_cores) if c.name in wanted):
        # Checked before anything runs, and only where a pinned check is asked for.
        if ns.cpu_cores < 1:
            parser.error("--cpu-cores: want 1 or more")
        try:
            first_cores(ns.cpu_cores)
        except ValueError as exc:
            parser.error(f"--cpu-cores {ns.cpu_cores}: {exc}")
    ns.out.mkdir(parents=True, exist_ok=True)
    env = environment()
    (ns.out / "env.txt").write_text(env + "\n")
    print(env, flush=True)
    print("-- checks:", flush=True)
    ok = True
    for check in checks(ns.device, ns.seconds, ns.cpu_cores):
        if check.name not in wanted:
            continue
        check = dataclasses.replace(check, limit_s=limits.get(check.name, check.limit_s))
        rc, took = run_check(check, ns.out)
        ok = ok and rc == 0
        status = f"killed at its {check.limit_s:.0f} s limit" if rc is None else f"exit {rc}"
        print(f"{check.name}: {status} after {took:.0f} s (log {ns.out / (check.name + '.log')})", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
