"""Peak memory of a process together with its live descendants (ffmpeg decoders), sampled from /proc."""

from __future__ import annotations

import os
import threading


class PeakMemory:
    """Peak of (this process + its live descendants) resident memory, sampled every 50 ms (Linux).

    Each sample reads /proc/PID/status (VmRSS), which costs microseconds. Proportional set size would
    split shared pages more finely, but /proc/PID/smaps_rollup walks the whole address space under the
    memory-map lock: measured 57 ms for a 2.8 GB process, so sampling it every 50 ms took half a core
    from the worker being measured and stalled its page faults. RSS is the upper bound (shared libraries
    count in full), which is the safe side for a memory goal.

    A child between fork and exec shares all of this process's pages, and RSS would charge it all of them
    again (measured: a 4.0 GB "peak" for a 2 GB worker). Such a child still runs our own program with our
    own command line: it is not counted until it execs, and `children_peak_mb` is the decoders' own memory.
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
        me = os.getpid()
        program = _program(me)
        while True:
            own = _rss_mb(me)
            children = sum(
                _rss_mb(pid) for pid in _descendants(me) if program is None or _program(pid) != program
            )
            self.peak_mb = max(self.peak_mb, own + children)
            self.children_peak_mb = max(self.children_peak_mb, children)
            if self._stop.wait(0.05):
                return


def _rss_mb(pid: int) -> float:
    """VmRSS in MB; 0 for a process that is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            line = next((x for x in handle if x.startswith("VmRSS:")), None)
    except OSError:
        return 0.0
    return int(line.split()[1]) / 1024 if line is not None else 0.0


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
