"""Soak: the pipeline under a mixed fault schedule (429s, timeouts, 503s, a truncated caption track, a
corrupt video) and five random kills, then one run against the healed site, ends with exactly the data of
a fault-free run: no video lost. Loopback only, bounded (a small slice of the demo world)."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pyarrow.compute as pc
import pytest

from flows.demo import demo_pipeline_config
from storage.layout import DataRoot
from storage.shards import read_dataset
from tests.pipeline.crash_helpers import (
    COLLECTED,
    PipelineProcess,
    assert_same_datasets,
    pipeline_env,
    temp_leftovers,
)
from tests.pipeline.test_retried_upstream import _free_port, _serve

STAGES = ["tasks", "search", "captions", "features"]
FLOWS = ["mine-tasks", "search_videos", "fetch_captions", "extract_features"]
KILLS = 5
SEED = 20261201


def _config(site_url: str, tmp: Path) -> Path:
    """Three articles, five hits each, small feature inputs, and short client timeouts (the slow fault)."""
    cfg = demo_pipeline_config(site_url)
    data = json.loads(cfg.model_dump_json())
    data["tasks"]["max_articles"] = 3
    data["search"]["max_results"] = 5
    data["features"]["short_side_2d"] = 32
    for section in ("search", "captions", "features"):
        access = data[section].get("access", data[section])
        if "socket_timeout_s" in access:
            access["socket_timeout_s"] = 2.0
    path = tmp / "config.json"
    path.write_text(json.dumps(data))
    return path


def _args(config: Path, root: Path) -> list[str]:
    out = ["--config", str(config), "--data-root", str(root)]
    for stage in STAGES:
        out += ["--stage", stage]
    return out


def _kept_ok(root: Path) -> list[str]:
    table = read_dataset(DataRoot.from_any(root), "frame_features").to_table(columns=["video_id", "status"])
    return sorted(set(table.filter(pc.equal(table.column("status"), "ok")).column("video_id").to_pylist()))


@pytest.mark.slow
def test_faults_and_kills_then_one_clean_run_lose_nothing(tmp_path: Path) -> None:
    port = _free_port()
    config = _config(f"http://127.0.0.1:{port}", tmp_path)
    env = pipeline_env(tmp_path / "prefect-home")
    log = tmp_path / "pipeline.log"
    baseline, soaked = tmp_path / "baseline", tmp_path / "soaked"

    with _serve(port, []):
        clean = PipelineProcess(_args(config, baseline), env, log)
        assert clean.wait(timeout=900) == 0, log.read_text()[-5000:]
    videos = _kept_ok(baseline)
    assert len(videos) >= 4, videos

    # One fault per kind on videos the fault-free run kept, plus 429s and slow caption answers for all.
    rng = random.Random(SEED)
    picked = rng.sample(videos, 4)
    faults = [
        f"server_error={picked[0]}",
        f"truncated_captions={picked[1]}",
        f"corrupt_videos={picked[2]}",
        f"server_error={picked[3]}",
        "too_many_requests=12",
        "retry_after_s=1",
        "slow_s=3",
        "slow_prefix=/api/timedtext",
    ]
    kills = runs = 0
    with _serve(port, faults):
        while kills < KILLS and runs < KILLS + 4:
            runs += 1
            run = PipelineProcess(_args(config, soaked), env, log)
            if run.wait_for(f"for flow '{rng.choice(FLOWS)}'", timeout=600):
                time.sleep(rng.uniform(0.2, 3.0))
                if run.proc.poll() is None:
                    run.kill_group()
                    kills += 1
                    assert run.group_alive() == [], "processes of a killed run survived"
                    continue
            run.wait(timeout=900)  # ran to its end under the faults (it may fail: a 429 halts a stage)
    assert kills == KILLS, f"only {kills} kills landed in {runs} runs"

    with _serve(port, []):  # healed: the same site, no faults
        final = PipelineProcess(_args(config, soaked), env, log)
        assert final.wait(timeout=900) == 0, log.read_text()[-5000:]
        assert final.group_alive() == []

    assert _kept_ok(soaked) == videos, "videos lost"
    assert_same_datasets(DataRoot.from_any(baseline), DataRoot.from_any(soaked), COLLECTED)
    assert temp_leftovers(soaked) == []
    print(f"\nsoak: {runs} faulty runs, {kills} kills, faults {faults}; {len(videos)} videos kept in both")
