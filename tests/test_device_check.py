"""The prepared GPU run (flows/device_check.py) works on a GPU machine's image: what it imports is there
or travels as a wheel (`make device-wheels`), and a failing or hanging check leaves the others' logs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from flows import device_check

ROOT = Path(__file__).resolve().parents[1]

# Top-level modules of the GPU machine's image that the benches may reach (its package list, from the device
# library's KINDS.md; among them no prefect, duckdb, brotli or yt-dlp), the wheels `make device-wheels`
# carries there, and this project (on the path).
IMAGE = {
    "torch", "torchvision", "torchgen", "triton", "numpy", "pyarrow", "pandas", "typer", "click", "rich",
    "shellingham", "typing_extensions", "annotated_doc", "PIL", "fsspec", "cloudpickle", "yaml", "sympy",
    "mpmath", "networkx", "jinja2", "markupsafe", "filelock", "pygments", "markdown_it", "mdurl", "tqdm",
    "colorama", "cuda", "psutil", "dateutil", "six", "packaging",
}  # fmt: skip
CARRIED = {"av", "pydantic", "pydantic_core", "annotated_types", "typing_inspection", "dill"}

# A child that loads what the two benches load, eagerly and lazily, and lists the packages it took.
CHILD = textwrap.dedent(
    """
    import sys
    from flows import device_check
    app = device_check.bench_app()
    import tasks.bench.features_device, tasks.bench.training, tasks.features.decode_av, tasks.bench.features
    import flows.cli_features, flows.cli_train
    from typer.testing import CliRunner
    for cmd in (["bench", "features", "--help"], ["bench", "train", "--help"]):
        result = CliRunner().invoke(app, cmd)
        assert result.exit_code == 0, result.output
        assert "--device" in result.output, result.output
    print("loaded", sorted({m.partition(".")[0] for m in sys.modules} - set(sys.stdlib_module_names)))
    """
)


def _site_view(folder: Path, allowed: set[str]) -> Path:
    """A site-packages holding only `allowed` of this environment's packages (links), with the shared
    libraries and metadata they load (`*.libs`, torch's `nvidia`, every `*.dist-info`)."""
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    folder.mkdir(parents=True)
    for entry in site.iterdir():
        top = entry.name.split(".")[0]
        keep = top in allowed or top.lstrip("_") in allowed or top in {"nvidia", "functorch"}
        if keep or entry.name.endswith((".libs", ".dist-info")):
            (folder / entry.name).symlink_to(entry)
    return folder


def _on_image(tmp_path: Path, allowed: set[str]) -> subprocess.CompletedProcess[str]:
    """CHILD run without site-packages (-S), on this project and a view of `allowed` packages only."""
    view = _site_view(tmp_path / "site", allowed)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{view}"}
    return subprocess.run(
        [sys.executable, "-S", "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_bench_commands_load_with_only_the_gpu_image_and_the_carried_wheels(tmp_path: Path) -> None:
    done = _on_image(tmp_path / "all", IMAGE | CARRIED)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = set(done.stdout.split("loaded", 1)[1].strip(" []\n").replace("'", "").split(", "))
    assert {"torch", "pydantic", "typer"} <= loaded and not loaded & {"prefect", "duckdb", "brotli"}
    # The view works: without a carried wheel the same child fails, naming it.
    without = _on_image(tmp_path / "less", IMAGE | (CARRIED - {"pydantic"}))
    assert without.returncode != 0 and "No module named 'pydantic'" in without.stderr


def test_a_failing_check_leaves_its_log_and_the_run_reports_it(tmp_path: Path) -> None:
    """A check that cannot run (an unknown device) exits non-zero; its output is in its log and the run
    says so, rather than stopping before the summary."""
    done = subprocess.run(
        [sys.executable, "-m", "flows.device_check", str(tmp_path), "--device", "tpu", "--only", "train"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    log = (tmp_path / "train.log").read_text()
    assert log.startswith("$ howto bench train --device tpu") and "tpu" in log.splitlines()[1:][-1]
    assert "train: exit 2" in done.stdout
    assert (tmp_path / "env.txt").read_text().startswith("python ")


def test_limits_are_settable_per_check_and_a_bad_one_is_a_usage_error(tmp_path: Path) -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "flows.device_check", str(tmp_path), "--limit", "features=soon"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2 and "--limit features=soon: want NAME=SECONDS" in bad.stderr
    assert not (tmp_path / "env.txt").exists()  # nothing ran
    done = subprocess.run(
        [sys.executable, "-m", "flows.device_check", str(tmp_path), "--device", "cpu", "--only", "train"]
        + ["--limit", "train=3"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1 and "train: killed at its 3 s limit" in done.stdout, done.stdout


def test_a_check_past_its_limit_takes_its_child_processes_with_it(tmp_path: Path) -> None:
    """A check whose command started a process of its own (the CPU bench's worker, a decoder) is ended with
    all of them: nothing is left running, and the run does not wait on the pipe they held."""
    marker = tmp_path / "grandchild.pid"
    script = tmp_path / "spawner.py"
    script.write_text(
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"open({str(marker)!r}, 'w').write(str(p.pid))\n"
        "print('spawned', flush=True)\n"
        "time.sleep(120)\n"
    )
    check = device_check.Check("spawner", ("unused",), 3.0)
    real_cmd = [sys.executable, str(script)]
    rc, took = device_check.run_check(check, tmp_path, command=real_cmd)
    assert rc is None and took < 30
    assert "spawned" in (tmp_path / "spawner.log").read_text()
    pid = int(marker.read_text())
    for _ in range(50):
        if not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
        raise AssertionError("the check's child process outlived it")


def test_a_pinned_check_and_what_it_starts_run_on_its_cores_with_as_many_threads(tmp_path: Path) -> None:
    """The -cpu checks measure the host's CPU at the issue's core count: the check's process, and a process
    it starts (the bench's worker), may run only on the first N cores, with N OpenMP threads."""
    script = tmp_path / "where.py"
    script.write_text(
        "import os, subprocess, sys\n"
        "print('self', sorted(os.sched_getaffinity(0)), os.environ['OMP_NUM_THREADS'], flush=True)\n"
        "code = 'import os; print(\"child\", sorted(os.sched_getaffinity(0)), flush=True)'\n"
        "subprocess.run([sys.executable, '-c', code], check=True)\n"
    )
    cores = device_check.first_cores(1)
    check = device_check.Check("pinned", ("bench", "train", "--device", "cpu"), 60.0, cores=1)
    rc, _ = device_check.run_check(check, tmp_path, command=[sys.executable, str(script)])
    log = (tmp_path / "pinned.log").read_text()
    assert rc == 0, log
    assert f"-- pinned to cores {cores}, OMP_NUM_THREADS=1" in log
    assert f"self {cores} 1" in log and f"child {cores}" in log
    names = [c.name for c in device_check.checks("cuda", 30, cpu_cores=2)]
    assert names == ["features", "train", "features-gpu-decode", "features-cpu", "train-cpu"]
    assert [c.cores for c in device_check.checks("cuda", 30, cpu_cores=2)] == [None, None, None, 2, 2]
    gpu_decode = device_check.checks("cuda", 30)[2].argv
    assert gpu_decode[-2:] == ("--decoder", "pyav-gpu") and "cuda" in gpu_decode


def test_more_cores_than_the_process_may_use_is_a_usage_error(tmp_path: Path) -> None:
    too_many = len(os.sched_getaffinity(0)) + 1
    bad = subprocess.run(
        [sys.executable, "-m", "flows.device_check", str(tmp_path), "--cpu-cores", str(too_many)]
        + ["--only", "train-cpu"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2 and f"--cpu-cores {too_many}: {too_many} cores asked for" in bad.stderr
    assert not (tmp_path / "env.txt").exists()
