"""`howto bench search`: probes per second per process against the demo site, politeness off."""

from __future__ import annotations

import multiprocessing as mp
import tempfile
import time
from collections.abc import Callable
from typing import Any

from storage.layout import DataRoot
from tasks.search.info_store import save_info
from tasks.youtube.access import AccessSecrets, YoutubeAccess
from tasks.youtube.client import YoutubeClient
from tasks.youtube.decision import decide
from tasks.youtube.politeness import Politeness, PolitenessSettings

OFF = PolitenessSettings(requests_per_s=0, jitter_s=0)


def _serve(queue: Any, stop: Any) -> None:
    """Child process: the demo site, so its CPU time is not charged to the measured process."""
    from tasks.demo.site import DemoSite
    from tasks.demo.world import build_world, default_cache_dir

    world = build_world(default_cache_dir(), seed=0)
    with DemoSite(world) as site:
        queue.put((site.url, [a.title for a in world.articles if a.videos], [v.id for v in world.videos]))
        stop.wait()


def run_bench(n_videos: int, log: Callable[[str], None] = print) -> dict[str, float]:
    """Search every task once, then probe `n_videos` (cycling the world's videos); print and return rates."""
    ctx = mp.get_context("spawn")
    queue, stop = ctx.Queue(), ctx.Event()
    server = ctx.Process(target=_serve, args=(queue, stop), daemon=True)
    server.start()
    try:
        url, titles, ids = queue.get(timeout=300)
        access = YoutubeAccess(site_url=url, politeness=OFF)
        client = YoutubeClient(access, AccessSecrets(), Politeness(OFF))  # our own server: no secrets
        started = time.perf_counter()
        hits = sum(len(client.search(f"how to {t}", 200, "demosearch")) for t in titles)
        search_s = time.perf_counter() - started
        client.ytdlp_s = 0.0
        root = DataRoot.from_any(tempfile.mkdtemp(prefix="howto-bench-search-"))
        started = time.perf_counter()
        kept = 0
        for i in range(n_videos):
            vid = ids[i % len(ids)]
            try:
                info = client.probe(client.video_url(vid))
            except Exception:  # noqa: BLE001 - private/removed demo videos are part of the mix
                continue
            save_info(root, vid, info)
            kept += decide(info).keep
        probe_s = time.perf_counter() - started
    finally:
        stop.set()
        server.join(timeout=10)
        if server.is_alive():
            server.kill()
    result = {
        "searches_per_s": len(titles) / search_s,
        "hits_per_s": hits / search_s,
        "videos_probed_per_s": n_videos / probe_s,
        "ytdlp_share": client.ytdlp_s / probe_s,
        "kept": float(kept),
    }
    log(
        f"search: {len(titles)} queries, {hits} hits in {search_s:.2f} s ({result['searches_per_s']:.1f} queries/s)"
    )
    log(
        f"probe:  {n_videos} videos in {probe_s:.2f} s = {result['videos_probed_per_s']:.1f} videos/s per process; "
        f"{100 * result['ytdlp_share']:.0f}% of the time inside yt-dlp (rest: sanitize, decide, write info JSON)"
    )
    return result
