"""`howto demo`: build the demo world, serve it on loopback, run the pipeline on it, print what happened."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flows.pipeline import pipeline
from flows.pipeline_config import ALL_STAGES, PipelineConfig, Stage
from storage.catalog import query, stats
from storage.layout import DataRoot
from storage.shards import list_markers
from tasks.captions.config import FetchCaptionsConfig
from tasks.features.config import ExtractFeaturesConfig
from tasks.features.precision_record import precision_counts
from tasks.search.config import SearchVideosConfig
from tasks.tasks.config import MineTasksConfig
from tasks.train.compare import RECIPES
from tasks.train.config import TrainConfig
from tasks.youtube.access import YoutubeAccess
from tasks.youtube.politeness import PolitenessSettings

SAMPLE_QUERY = (
    "SELECT category, count(DISTINCT video_id) AS videos, count(*) AS clips, "
    "round(sum(end_ms - start_ms) / 60000.0, 1) AS minutes FROM clips GROUP BY 1 ORDER BY clips DESC"
)


DEMO_SIZE_2D, DEMO_SIZE_3D = 64, 32
# Training sized for the demo's ~37 videos (HowTo100M's defaults are for 1.2M: d=4096, lr 1e-4, 10% held
# out): a small joint space, a larger step, 30% of the videos held out. The objective and settings are
# `howto train compare`'s on this world (README "Training objectives": 177 held-out caption-line clips,
# 3 seeds): TVTS's mean R@5 ties InfoNCE's within one sd (0.601 +- 0.005 against 0.612 +- 0.027 on one root,
# InfoNCE at a tenth of the cost), and it has the best R@1, R@10 and CrossTask recall. Clip vectors are mean-pooled over each line widened by
# 2 s of context (a 2 s line covers two or three feature rows; its neighbours' frames say which step it
# is in): InfoNCE's R@5 goes from 0.55 (HowTo100M's max over the line alone) to 0.60 with it.
DEMO_OBJECTIVE = "tvts"
DEMO_TRAIN = TrainConfig(
    **RECIPES[DEMO_OBJECTIVE], d=256, epochs=24, lr=3e-3, heldout_fraction=0.3, videos_per_batch=8, seed=0,
    clip_pool="mean", clip_context_s=2.0,
)  # fmt: skip


def demo_pipeline_config(site_url: str) -> PipelineConfig:
    """The pipeline pointed at the local demo site, politeness off (it is our own server), random CNN weights."""
    return PipelineConfig(
        tasks=MineTasksConfig(base_url=site_url, rps=1000.0, backoff_base_s=0.05, backoff_max_s=0.5),
        youtube=YoutubeAccess(
            site_url=site_url,
            politeness=PolitenessSettings(
                requests_per_s=0, jitter_s=0, backoff_base_s=0.2, backoff_max_s=2.0
            ),
            concurrency=4,
        ),
        search=SearchVideosConfig(search_prefix="demosearch", max_results=50),
        captions=FetchCaptionsConfig(),
        # Random weights, and inputs smaller than the reference sizes (224 / 112): on a 2-core CPU without
        # native bf16 the reference sizes take ~45 s per demo video, which would blow the demo's 10
        # minutes. The stage's own defaults stay the reference sizes.
        features=ExtractFeaturesConfig(random_weights=True, short_side_2d=DEMO_SIZE_2D, size_3d=DEMO_SIZE_3D),
        train=DEMO_TRAIN,
    )


# The site's URL is part of the tasks stage's config (a different site is different data), so the demo
# serves on the same port every time when it can: a second `howto demo` then reuses every shard.
DEMO_PORT = 8647


def _serve(world: Any) -> Any:
    from tasks.demo.site import DemoSite

    try:
        return DemoSite(world, port=DEMO_PORT)
    except OSError:  # port taken (another demo?): any free port; only the small tasks stage reruns
        return DemoSite(world)


class DemoWorldUnwritable(RuntimeError):
    """The demo world cannot be built in its cache folder (--world-dir, $HOWTO_DEMO_CACHE)."""


@contextmanager
def demo_site(
    site_url: str | None, world_dir: Path | None, seed: int, log: Callable[[str], None]
) -> Iterator[str]:
    """An already running site (its URL), or the seeded world built and served for the duration."""
    if site_url:
        yield site_url.rstrip("/")
        return
    from tasks.demo.world import build_world, default_cache_dir

    started = time.perf_counter()
    directory = world_dir or default_cache_dir()
    try:
        world = build_world(directory, seed=seed)
    except OSError as exc:  # a file in the folder's place, no permission, a full disk
        raise DemoWorldUnwritable(f"demo world cache {directory}: {exc.strerror or exc}") from exc
    log(
        f"demo world (seed {seed}): {len(world.articles)} articles, {len(world.videos)} videos, "
        f"{world.step_count()} distinct steps, ready in {time.perf_counter() - started:.1f}s"
    )
    with _serve(world) as site:
        log(
            f"demo site serving on {site.url} (wikiHow API + pages, YouTube-style search, watch pages, captions)"
        )
        yield site.url


def run_demo(
    data_root: str | None,
    site_url: str | None = None,
    world_dir: Path | None = None,
    seed: int = 0,
    stages: list[Stage] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the pipeline on the demo world and return the per-stage summaries."""
    root = DataRoot.from_any(data_root)
    started = time.perf_counter()
    with demo_site(site_url, world_dir, seed, log) as url:
        summaries = pipeline(
            cfg=demo_pipeline_config(url), data_root=root.url, stages=list(stages or ALL_STAGES)
        )
    train = summaries.get("train")
    if not site_url and isinstance(train, dict) and train.get("run_id"):
        # The demo world's steps have times: judge the run on its held-out videos as the papers do.
        from tasks.demo.evaluation import evaluate_demo

        features = ExtractFeaturesConfig(
            random_weights=True, short_side_2d=DEMO_SIZE_2D, size_3d=DEMO_SIZE_3D
        )
        summaries["benchmarks"] = evaluate_demo(
            root, train["run_id"], features, DEMO_TRAIN.heldout_fraction, world_dir, seed, log
        )
    summaries["elapsed_s"] = round(time.perf_counter() - started, 1)
    return summaries


def _random_features(root: DataRoot) -> bool:
    """True when any frame feature row came from random-weight encoders (the catalog says so per row)."""
    result = query("SELECT coalesce(bool_or(random_weights), false) FROM frame_features", root)
    return bool(result.rows and result.rows[0][0])


def precision_line(root: DataRoot, train: dict[str, Any]) -> str | None:
    """Which precision the features and the training ran in, from the features' shard markers (every video
    with features, reused from an earlier run or not) and the training run. `auto` takes bf16 on a CPU only
    where it measured faster than fp32 (a Zen 4: yes; an Intel VM without AMX: no), and bf16 features move
    the recall figures by points, not last digits, so the summary says which it was."""
    counts = precision_counts(marker.extra for marker in list_markers(root, "frame_features"))
    parts = []
    if counts:
        parts.append(
            "features "
            + ", ".join(f"{p} ({n} video{'s' if n != 1 else ''})" for p, n in sorted(counts.items()))
        )
    if train.get("precision"):
        parts.append(f"training {train['precision']}")
    if not parts:
        return None
    return (
        f"  precision: {'; '.join(parts)} (`auto` is bf16 only on a CPU where it measured faster than fp32, "
        "see `howto doctor`; the other precision gives other recall figures)"
    )


def report_lines(root: DataRoot, summaries: dict[str, Any]) -> list[str]:
    """The human summary printed at the end of `howto demo`."""
    lines = ["", "== howto demo: what happened =="]
    for stage in ALL_STAGES:
        s = summaries.get(stage)
        if not isinstance(s, dict) or "rows_in" not in s:
            continue
        drops = ", ".join(f"{k}={v}" for k, v in (s.get("drops") or {}).items()) or "none"
        lines.append(
            f"{stage:<9} shards {s.get('shards', 0)} ({s.get('shards_cached', 0)} cached)  rows in {s['rows_in']}  "
            f"out {s['rows_out']}  errors {s.get('errors', 0)}  drops: {drops}"
        )
    summary = stats(root)
    lines.append(
        f"videos kept {summary['videos']['kept']} of {summary['videos']['probed']} probed, "
        f"{summary['videos']['hours_kept']:.2f} h of video; clips {summary['clips']['total']} "
        f"({summary['clips']['words']} words)"
    )
    train = summaries.get("train")
    if isinstance(train, dict) and train.get("metrics"):
        m = train["metrics"]
        metrics = "  ".join(
            f"{k}={m[k]:.3f}" if isinstance(m[k], float) else f"{k}={m[k]}"
            for k in ("R@1", "R@5", "R@10", "MedR")
            if k in m
        )
        candidates = m.get("candidates", "?")
        lines.append(
            f"training (objective {DEMO_OBJECTIVE}, the best of `howto train compare` on this world; "
            f"held-out clips, {candidates} candidates): {metrics}"
        )
        if _random_features(root):
            lines.append(
                "  note: video features come from random-weight CNNs (no pretrained weights offline), "
                f"inputs {DEMO_SIZE_2D} px (2D) / {DEMO_SIZE_3D} px (3D) instead of 224 / 112"
            )
        precision = precision_line(root, train)
        if precision:
            lines.append(precision)
    lines.extend(summaries.get("benchmarks") or [])
    lines.append(f"sample query: {SAMPLE_QUERY}")
    result = query(SAMPLE_QUERY, root)
    lines.append("  " + " | ".join(result.columns))
    lines.extend("  " + " | ".join(str(v) for v in row) for row in result.rows)
    lines.append(f'data: {root.url}  (catalog: howto query "..." --data-root {root.url})')
    lines.append(f"elapsed: {summaries.get('elapsed_s', '?')} s")
    return lines
