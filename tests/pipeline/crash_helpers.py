"""Run `howto pipeline` as a killable subprocess and compare datasets (shared by pipeline tests)."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from storage.layout import DataRoot
from storage.shards import read_dataset
from tests.cpu import worker_threads

BIN = Path(sys.executable).parent
# Columns that record when something happened, not what was found.
TIME_COLUMNS = {"checked_at", "downloaded_at", "probed_at", "created_at", "fetched_at"}
COLLECTED = ["tasks", "search_results", "videos", "captions", "clips", "frame_features"]


def pipeline_env(home: Path, api: str | None = None) -> dict[str, str]:
    """The environment of a `howto pipeline` run: its own Prefect home, and the server at `api` when given
    (else each run starts a temporary server of its own, as a user's plain `howto pipeline` does).

    A SIGKILLed worker cannot remove its temporary files (yt-dlp's caption folder): keep them in the
    test's own folder, not the machine's /tmp.
    """
    scratch = home.parent / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        {
            "TMPDIR": str(scratch),
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            # The run's share of the cores (see tests/cpu.py): OpenMP threads beyond it spin at barriers
            # while the other pytest worker holds the core, burning CPU both tests need.
            "OMP_NUM_THREADS": str(worker_threads()),
        }
    )
    if api is not None:
        env["PREFECT_API_URL"] = api
    return env


def _default_stop_signals() -> None:
    """In the child before it runs: SIGINT and SIGQUIT as a terminal's foreground job has them. A shell
    without job control starts a background command (`pytest ... &`, as CI scripts do) with both ignored,
    and an ignored signal stays ignored through exec: the run then shrugged off the Ctrl-C a test sent."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


class PipelineProcess:
    """`howto pipeline` in its own process group, its output lines readable as they come."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.proc = subprocess.Popen(
            [str(BIN / "howto"), "pipeline", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_stop_signals,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        # Line-buffered: a killed run's lines reach the shared log before the next run's.
        self.log = log.open("a", encoding="utf-8", buffering=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace")
            self.log.write(line)
            self.lines.put(line)

    def wait_for(self, needle: str, timeout: float) -> bool:
        """True once a line containing `needle` appeared; False if the process ended or time ran out."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if needle in self.lines.get(timeout=0.5):
                    return True
            except queue.Empty:
                if self.proc.poll() is not None:
                    return False
        return False

    def kill_group(self) -> None:
        """SIGKILL the whole process group (the flow, its decoders and downloaders, and the temporary Prefect
        server it started when it was given none)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=60)
        self._reader.join(timeout=10)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._reader.join(timeout=10)
            self.log.flush()

    def group_alive(self, grace_s: float = 15.0) -> list[int]:
        """Pids still in the process group (orphans) after a grace period, if any.

        SIGKILL is delivered at once but the kernel tears processes down asynchronously, and children of a
        dead parent linger as zombies until init reaps them: only live (non-zombie) members count, and
        they get `grace_s` to disappear.
        """
        deadline = time.time() + grace_s
        while True:
            out = subprocess.run(["ps", "-eo", "pid=,pgid=,stat="], capture_output=True, text=True).stdout
            alive = [
                int(pid)
                for pid, pgid, stat in (line.split(None, 2) for line in out.splitlines())
                if int(pgid) == self.proc.pid and not stat.startswith("Z")
            ]
            if not alive or time.time() > deadline:
                return alive
            time.sleep(0.2)


def canonical(root: DataRoot, dataset: str, replace: dict[str, str] | None = None) -> pa.Table:
    """A dataset's rows without time columns, in a stable order, for equality checks."""
    table = read_dataset(root, dataset).to_table()
    table = table.drop_columns([c for c in table.column_names if c in TIME_COLUMNS])
    for old, new in (replace or {}).items():
        for i, field in enumerate(table.schema):
            if pa.types.is_string(field.type):
                column = pc.replace_substring(table.column(i), old, new)
                table = table.set_column(i, field, column)
    sortable = [
        c
        for c in table.column_names
        if not pa.types.is_list(table.schema.field(c).type) and c not in ("error",)
    ]
    return table.sort_by([(c, "ascending") for c in sortable])


def temp_leftovers(root: Path) -> list[Path]:
    return [
        p
        for p in root.rglob("*")
        if p.name.startswith(".tmp-") or p.suffix in (".part", ".ytdl") or ".temp." in p.name
    ]


def assert_same_datasets(
    expected: DataRoot, actual: DataRoot, datasets: list[str], replace: dict[str, str] | None = None
) -> None:
    """Equal rows in every dataset (time columns aside); vectors to fp16 rounding; `replace` maps
    substrings of `expected`'s text (a site's address) to what `actual` has instead."""
    for dataset in datasets:
        a, b = canonical(expected, dataset, replace), canonical(actual, dataset)
        assert a.num_rows == b.num_rows > 0, f"{dataset}: {a.num_rows} rows vs {b.num_rows}"
        for name in a.column_names:
            if name == "vector":
                # Same frames through the same model; batch composition can differ after a resume, so
                # fp16 values are compared to fp16 rounding.
                va = np.array(a.column(name).to_pylist(), dtype=np.float32)
                vb = np.array(b.column(name).to_pylist(), dtype=np.float32)
                worst = float(np.abs(va - vb).max()) if va.shape == vb.shape else float("nan")
                assert np.allclose(va, vb, atol=2e-3), f"{dataset}.{name} differs (max |diff| {worst:.2e})"
            else:
                assert a.column(name).to_pylist() == b.column(name).to_pylist(), f"{dataset}.{name} differs"
