"""Crash safety and soak: the pipeline under a mixed fault schedule (429s, timeouts, 503s, truncated caption
tracks, corrupt videos), killed with SIGKILL at random points in every stage (training too), then the site
healed, then a shard left between rename and marker and a shard truncated under its marker: it ends with
the same datasets and training history as an uninterrupted fault-free run, no video lost, no temp files,
no orphan processes. Loopback only; a small slice of the demo world keeps it bounded."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest

from flows.demo import demo_pipeline_config
from storage.layout import DataRoot
from storage.schemas import get_schema
from storage.shards import list_markers, read_dataset
from tasks.demo.world import World
from tests.pipeline.crash_helpers import (
    COLLECTED,
    PipelineProcess,
    assert_same_datasets,
    canonical,
    pipeline_env,
    temp_leftovers,
)
from tests.pipeline.test_retried_upstream import _free_port, _serve

STAGES = ["tasks", "search", "captions", "features", "train"]
# Where each kill lands: while a stage's subflow runs (the flow names Prefect logs as it begins them).
# Seven attempts for at least six kills: a kill late in a resumed run can miss a stage that finishes first.
KILL_IN = [
    "mine-tasks",
    "search_videos",
    "fetch_captions",
    "extract_features",
    "extract_features",
    "train_embedding",
    "train_embedding",
]
KILLS = 6
# Columns of train_metrics that time the work rather than record what it computed.
TIMING = {"epoch_s", "load_s"}


def small_config(site_url: str, tmp: Path, name: str, timeout_s: float | None = None) -> Path:
    """The demo config on two articles, five hits each, smallest feature inputs: crash safety does not need
    the whole world. `timeout_s` shortens the clients' timeouts (so the slow-caption fault is a timeout);
    it is an access setting, outside every data hash, so runs with and without it share their shards."""
    cfg = demo_pipeline_config(site_url)
    data = json.loads(cfg.model_dump_json())
    data["tasks"]["max_articles"] = 2
    data["search"]["max_results"] = 5
    data["features"]["short_side_2d"] = 32
    data["train"]["epochs"] = 4
    data["train"]["heldout_fraction"] = 0.5  # the slice keeps 3 videos: hold one out
    if timeout_s is not None:
        data["youtube"]["socket_timeout_s"] = timeout_s
    path = tmp / name
    path.write_text(json.dumps(data))
    return path


def args_for(config: Path, root: Path) -> list[str]:
    out = ["--config", str(config), "--data-root", str(root)]
    for stage in STAGES:
        out += ["--stage", stage]
    return out


def fault_schedule(world: World) -> list[str]:
    """Faults on a spread of the world's usable videos (whichever the small crawl finds): 503 watch pages,
    truncated caption tracks, corrupt video files, caption answers slower than the client's timeout; and
    429s for the first requests. Sized to bite without idling: five 429s stay within the crawler's own
    retries (six more would halt the task for Prefect's 30 s retry delay, which the robots tests cover),
    and a 2 s answer against a 1 s timeout costs yt-dlp's three retries 4 s per resumed run, not 8."""
    usable = [v.id for v in world.usable]
    return [
        f"server_error={','.join(usable[0::4])}",
        f"truncated_captions={','.join(usable[1::4])}",
        f"corrupt_videos={','.join(usable[2::4])}",
        "too_many_requests=5",
        "retry_after_s=1",
        "slow_s=2",
        "slow_prefix=/api/timedtext",
        f"slow_ids={','.join(usable[3::4])}",
    ]


def error_rows(root: Path) -> dict[str, int]:
    """Rows a faulty run left to retry, per dataset."""
    counts = {}
    for dataset in ("videos", "captions", "frame_features"):
        table = read_dataset(DataRoot.from_any(root), dataset).to_table(columns=["video_id", "status"])
        errors = table.filter(pc.equal(table.column("status"), "error")).column("video_id").to_pylist()
        counts[dataset] = len(set(errors))
    return counts


def kept_videos(root: Path) -> list[str]:
    table = read_dataset(DataRoot.from_any(root), "frame_features").to_table(columns=["video_id", "status"])
    return sorted(set(table.filter(pc.equal(table.column("status"), "ok")).column("video_id").to_pylist()))


@pytest.mark.slow
def test_faults_and_kills_resume_to_the_fault_free_data(
    demo_world: World, tmp_path: Path, prefect_api: str
) -> None:
    port, clean_port = _free_port(), _free_port()
    config = small_config(f"http://127.0.0.1:{port}", tmp_path, "config.json")
    faulty_config = small_config(f"http://127.0.0.1:{port}", tmp_path, "faulty.json", timeout_s=1.0)
    env = pipeline_env(tmp_path / "prefect-home", prefect_api)
    log = tmp_path / "pipeline.log"

    with _serve(clean_port, []):
        # The fault-free run goes alongside the faulty ones, on its own site (the same world), with its own
        # Prefect home and log: much of a run's wall time is process start-up, so the two overlap well on
        # two cores. The site's URL is the only difference, mapped away when comparing.
        baseline = tmp_path / "baseline"
        baseline_log = tmp_path / "baseline.log"
        clean_config = small_config(f"http://127.0.0.1:{clean_port}", tmp_path, "clean.json")
        clean = PipelineProcess(
            args_for(clean_config, baseline),
            pipeline_env(tmp_path / "prefect-home-baseline", prefect_api),
            baseline_log,
        )

        crashed = tmp_path / "crashed"
        faults = fault_schedule(demo_world)
        rng = random.Random(20261124)
        kills = 0
        with _serve(port, faults):
            first = PipelineProcess(args_for(faulty_config, crashed), env, log)
            first.wait(timeout=900)  # may fail: a 429 storm halts a stage; what it wrote stays
            hit = error_rows(crashed)
            assert hit["videos"] > 0, f"faults did not bite: {hit}"
            for where in KILL_IN:
                if kills == KILLS:
                    break
                run = PipelineProcess(args_for(faulty_config, crashed), env, log)
                if run.wait_for(f"for flow '{where}'", timeout=600):
                    time.sleep(rng.uniform(0.2, 4.0))
                    if run.proc.poll() is None:
                        run.kill_group()
                        kills += 1
                        assert run.group_alive() == [], "processes of a killed run survived"
                        continue
                run.wait(timeout=600)
        assert kills >= KILLS - 1, f"only {kills} kills landed"
        assert clean.wait(timeout=900) == 0, baseline_log.read_text()[-5000:]

    with _serve(port, []):  # healed: the same site, no faults
        final = PipelineProcess(args_for(config, crashed), env, log)
        assert final.wait(timeout=900) == 0, log.read_text()[-5000:]
        assert final.group_alive() == []

        # Two states a crash or a disk can leave that no kill is sure to hit: a captions shard renamed
        # into place whose marker was never written, and a frame_features shard cut short under its marker.
        root = DataRoot.from_any(crashed)
        Path(root.marker_path("captions", get_schema("captions").version, 0)).unlink()
        features = Path(root.shard_path("frame_features", get_schema("frame_features").version, 0))
        features.write_bytes(features.read_bytes()[: features.stat().st_size // 2])
        # This run starts a temporary server of its own, as a plain `howto pipeline` does.
        repair = PipelineProcess(args_for(config, crashed), pipeline_env(tmp_path / "prefect-home"), log)
        assert repair.wait(timeout=900) == 0, log.read_text()[-5000:]
        assert "it will be redone" in log.read_text()  # the truncation was noticed and logged

    assert kept_videos(crashed) == kept_videos(baseline), "videos lost"
    urls = {f"127.0.0.1:{clean_port}": f"127.0.0.1:{port}"}
    assert_same_datasets(
        DataRoot.from_any(baseline), root, [*COLLECTED, "clip_pairs", "text_embeddings"], replace=urls
    )
    # Training resumed from its epoch checkpoints computes the same history as one uninterrupted run.
    # Every rewrite of the training data (a retried or repaired shard upstream) is a new run id (the id
    # hashes the config and the clip_pairs markers), each kept as its own shard: the last one trained on
    # the final data and must match the uninterrupted run's.
    last = max(list_markers(root, "train_metrics"), key=lambda m: m.finished_at).extra["run_id"]
    a, b = canonical(DataRoot.from_any(baseline), "train_metrics"), canonical(root, "train_metrics")
    b = b.filter(pc.equal(b.column("run_id"), last))
    assert a.num_rows == b.num_rows == 4
    for name in sorted(set(a.column_names) - TIMING - {"run_id"}):
        va, vb = a.column(name).to_pylist(), b.column(name).to_pylist()
        assert np.allclose(va, vb, atol=1e-5), f"train_metrics.{name} differs: {va} vs {vb}"
    assert temp_leftovers(crashed) == []
    print(f"\nsoak: faults {faults}; first faulty run left errors {hit}; {kills} kills; "
          f"{len(kept_videos(baseline))} videos kept in both")  # fmt: skip
