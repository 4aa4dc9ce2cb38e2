"""Peak memory of a process together with its live descendants (ffmpeg decoders), sampled from /proc."""

from __future__ import annotations

import os
import threading


class PeakMemory:
    """Peak of (this process + its live descendants) memory, sampled from /proc every 50 ms (Linux).

    Proportional set size (PSS: shared pages split among their sharers), not RSS: a child forked from a
    2 GB process shares all its pages until it execs ffmpeg, and RSS (like ru_maxrss of children) charges
    each such child the full 2 GB, so summing RSS counted a worker twice (measured: 4.0 GB "peak").

    PSS splits those shared pages, so the total stays right while a child sits between fork and exec, but
    the child's share then is about half the worker (measured: a 1.3-1.6 GB "ffmpeg" next to a 2.7-3.3 GB
    worker, intermittently, when a sample fell in that window). Such a child still runs our own program with
    our own command line: it counts in the total, not in `children_peak_mb`, which is the decoders' own.
    """

    def __init__(self) -> None:
        self.peak_mb, self.children_peak_mb = 0.0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while True:
            me = os.getpid()
            own, program = _rss_mb(me), _program(me)
            execed, forked = 0.0, 0.0
            for pid in _descendants(me):
                if program is not None and _program(pid) == program:
                    forked += _rss_mb(pid)  # not yet exec'd: pages shared with this process
                else:
                    execed += _rss_mb(pid)
            self.peak_mb = max(self.peak_mb, own + forked + execed)
            self.children_peak_mb = max(self.children_peak_mb, execed)
            if self._stop.wait(0.05):
                return


def _rss_mb(pid: int) -> float:
    """PSS from smaps_rollup (Linux >= 4.14), else VmRSS; 0 for a process that is gone."""
    for name, key in (("smaps_rollup", "Pss:"), ("status", "VmRSS:")):
        try:
            with open(f"/proc/{pid}/{name}", encoding="ascii") as handle:
                line = next((x for x in handle if x.startswith(key)), None)
        except OSError:
            continue
        if line is not None:
            return int(line.split()[1]) / 1024
    return 0.0


def _program(pid: int) -> tuple[str, bytes] | None:
    """The executable a process runs and its command line (a fork shares both until it execs); None when
    the process is gone or not ours to read."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return os.readlink(f"/proc/{pid}/exe"), handle.read()
    except OSError:
        return None


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as handle:
                kids = [int(k) for k in handle.read().split()]
        except OSError:
            continue
        for kid in kids:
            found += [kid, *_descendants(kid)]
    return found
