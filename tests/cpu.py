"""How many torch threads one test process gets."""

from __future__ import annotations

import os


def worker_threads() -> int:
    """The cores split among the pytest-xdist workers (all of them without xdist).

    Two workers running two OpenMP threads each on two cores preempt each other's threads inside parallel
    regions, and the thread left running spins at the barrier: measured in CI, the demo-world training test
    took 357 s beside the crash test with 2 threads, against 145 s alone; with 1 thread it takes 178 s
    alone and no longer fights the other worker for both cores.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, len(os.sched_getaffinity(0)) // workers)
