"""Peak memory of a process together with its live descendants (ffmpeg decoders), sampled from /proc."""

from __future__ import annotations

import os
import threading


class PeakMemory:
    """Peak of (this process + its live descendants) RSS, sampled from /proc every 50 ms (Linux).

    ru_maxrss of children is no use here: a child forked from a 2 GB process is charged that parent's
    pages until it execs ffmpeg, so RUSAGE_CHILDREN reports gigabytes for a decoder using tens of MB.
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
            own, children = _rss_mb(os.getpid()), sum(_rss_mb(p) for p in _descendants(os.getpid()))
            self.peak_mb = max(self.peak_mb, own + children)
            self.children_peak_mb = max(self.children_peak_mb, children)
            if self._stop.wait(0.05):
                return


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            line = next((x for x in handle if x.startswith("VmRSS:")), "VmRSS: 0 kB")
    except OSError:
        return 0.0
    return int(line.split()[1]) / 1024


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
