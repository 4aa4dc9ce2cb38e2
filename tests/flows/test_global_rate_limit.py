"""With a Prefect server, every worker shares one rate limit (a global concurrency limit with slot decay):
two worker processes probing the demo site together stay under it, counted at the site."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tasks.demo.site import DemoSite

pytestmark = pytest.mark.slow

# Requests per second, for both workers together. Low, so that the control (each worker alone at this
# rate, both at once) shows its doubled rate even on a loaded 2-core machine, where a worker managed only
# about 1 probe/s; a cap of 4/s made the control fail there.
RATE = 1.0
PER_WORKER = 6

WORKER = """
import sys, time
from tasks.youtube.access import YoutubeAccess
from tasks.youtube.client import YoutubeClient
from tasks.youtube.politeness import PolitenessSettings
site, rate, limit, ids = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4].split(",")
polite = PolitenessSettings(requests_per_s=rate, jitter_s=0, global_limit=limit)
client = YoutubeClient(YoutubeAccess(site_url=site, politeness=polite, retries=0, extractor_retries=0))
print("ready", flush=True)
sys.stdin.readline()  # both workers start probing together
for vid in ids:
    client.probe(client.video_url(vid))
print(type(client.politeness.limiter).__name__, client.politeness.limiter.__dict__.get("broken"), flush=True)
"""


def run_workers(site: DemoSite, limit: str, ids: list[str]) -> list[float]:
    """Two worker processes probe their own videos at once; returns the times of the site's requests."""
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    halves = [ids[:PER_WORKER], ids[PER_WORKER : 2 * PER_WORKER]]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, site.url, str(RATE), limit, ",".join(h)],
            env=env,
            cwd=Path(__file__).parents[2],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for h in halves
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    stamps: list[float] = []
    seen, done = len(site.requests), threading.Event()

    def sample() -> None:  # the site keeps request lines, not times: poll them
        nonlocal seen
        while not done.is_set():
            n = len(site.requests)
            stamps.extend([time.monotonic()] * (n - seen))
            seen = n
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    outputs = [p.communicate(timeout=180)[0] for p in procs]
    done.set()
    sampler.join()
    assert all(p.returncode == 0 for p in procs), outputs
    if limit:
        assert all("GlobalRateLimit None" in out for out in outputs), outputs  # never fell back
    assert len(stamps) == 2 * PER_WORKER
    return stamps


def most_in_window(stamps: list[float], window_s: float) -> int:
    return max(sum(1 for t in stamps if s <= t < s + window_s) for s in stamps)


def test_two_workers_share_one_global_limit(site: DemoSite) -> None:
    ids = [v.id for v in site.world.usable][: 2 * PER_WORKER]
    shared = run_workers(site, "howto-test-shared-limit", ids)
    # One slot decaying at RATE/s: never more than 1 + RATE * window requests in any window.
    for window in (1.0, 2.0, 3.0):
        assert most_in_window(shared, window) <= 1 + RATE * window + 1  # +1: 5 ms sampling
    shared_rate = (len(shared) - 1) / (shared[-1] - shared[0])
    assert shared_rate <= RATE * 1.05

    # The control: per-process caps alone let the two workers go at twice the rate together.
    alone = run_workers(site, "", ids)
    alone_rate = (len(alone) - 1) / (alone[-1] - alone[0])
    print(f"two workers, cap {RATE}/s: {shared_rate:.2f}/s with the global limit, {alone_rate:.2f}/s without")
    assert alone_rate > RATE * 1.3
