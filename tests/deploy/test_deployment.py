"""A real Prefect server and real process workers on the `cpu` and `gpu` pools: `howto deploy` (pools, the
`gpu` limit, `prefect deploy --all`), the collect -> features -> train trigger chain from one
`prefect deployment run 'pipeline/collect'`, two workers sharing one deployment's shards, a features
run cancelled mid-decode, and a per-run data root (a job variable) carried down the chain.
One server serves the whole module; every process started here is stopped by process group."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.demo import demo_pipeline_config
from flows.deploy_setup import ensure_gpu_limit, ensure_pools
from flows.pipeline_config import PipelineConfig
from flows.runner_config import RunnerConfig
from storage.catalog import query
from storage.layout import DataRoot
from storage.shards import read_marker
from tasks.gpu_limit import GpuLimitMissing, check_gpu_limit, gpu_slot
from tests.deploy.prefect_procs import (
    ROOT,
    TERMINAL,
    Processes,
    Server,
    flow_run_id,
    free_port,
    run_checked,
    start_server,
    wait_for,
)
from tests.flows.downloads import root_with_downloaded_videos

DEPLOYMENTS = {"collect", "features", "train", "full", "weekly", "mine-tasks", "search-videos",
               "fetch-captions", "extract-features", "train-embedding"}  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    procs = Processes()
    try:
        yield start_server(procs, tmp_path_factory.mktemp("prefect"))
    finally:
        procs.stop_all()


@pytest.fixture(scope="module")
def job_root(server: Server) -> Path:
    """`howto deploy` run once for the module; the data root it sets in every deployment's job variables."""
    root = server.logs / "job-variables-root"
    out = run_checked([sys.executable, "-m", "flows.cli", "deploy", "--data-root", str(root)], server.env)
    assert "created  concurrency limit gpu = 1" in out
    return root


@pytest.fixture()
def procs() -> Iterator[Processes]:
    started = Processes()
    try:
        yield started
    finally:
        started.stop_all()


def _deployment(server: Server, name: str) -> dict[str, Any]:
    found = server.post("/deployments/filter", {"deployments": {"name": {"any_": [name]}}})
    assert len(found) == 1, name
    return found[0]


def _runs_of(server: Server, deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return server.post("/flow_runs/filter", {"flow_runs": {"deployment_id": {"any_": [deployment["id"]]}}})


def _state(server: Server) -> dict[str, Any]:
    """What `howto deploy` sets up, without ids and timestamps: pools, limits, deployments, triggers."""
    by_id = {d["id"]: d["name"] for d in server.post("/deployments/filter")}
    return {
        "pools": sorted((p["name"], p["type"]) for p in server.post("/work_pools/filter")),
        "limits": sorted(
            (c["name"], c["limit"], c["active"]) for c in server.post("/v2/concurrency_limits/filter")
        ),
        "deployments": sorted(
            (
                d["name"],
                d["work_pool_name"],
                json.dumps(d["parameters"], sort_keys=True),
                json.dumps(d["job_variables"], sort_keys=True),
            )
            for d in server.post("/deployments/filter")
        ),  # fmt: skip
        "triggers": sorted(
            json.dumps(
                [a["trigger"]["match_related"], by_id.get(a["actions"][0]["deployment_id"])], sort_keys=True
            )
            for a in server.post("/automations/filter")
        ),
    }


def test_deploy_without_a_server_says_so_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({"PREFECT_HOME": str(tmp_path), "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"})
    command = [sys.executable, "-m", "flows.cli", "deploy"]
    out = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("error: Prefect API http://127.0.0.1:") and "not reachable" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def _small_demo(url: str, **runner: Any) -> PipelineConfig:
    """The demo pipeline on three articles, one search result each, two training epochs: a few videos."""
    cfg = demo_pipeline_config(url)
    return cfg.model_copy(
        update={
            "tasks": cfg.tasks.model_copy(update={"max_articles": 3}),
            "search": cfg.search.model_copy(update={"max_results": 1}),
            # The smallest inputs the encoders take: the chain is under test here, not the features.
            "features": cfg.features.model_copy(
                update={"short_side_2d": 32, "size_3d": 32, "batch_2d": 4, "batch_3d": 4, "decode_workers": 1}
            ),
            "train": cfg.train.model_copy(
                update={"epochs": 2, "heldout_fraction": 0.5, "videos_per_batch": 4}
            ),
            "runner": RunnerConfig(**runner),
        }
    )


def test_deploy_is_idempotent_and_gpu_limit_guards(server: Server, job_root: Path) -> None:
    names = {d["name"] for d in server.post("/deployments/filter")}
    assert DEPLOYMENTS <= names
    assert _deployment(server, "weekly")["schedules"][0]["schedule"]["cron"] == "0 3 * * 1"
    for name, pool in (("collect", "cpu"), ("features", "gpu"), ("train", "gpu")):
        deployment = _deployment(server, name)
        assert deployment["work_pool_name"] == pool
        assert deployment["job_variables"]["env"]["HOWTO_DATA_ROOT"] == str(job_root)
        assert deployment["global_concurrency_limit"]["limit"] >= 1
    # Parameter forms open filled: the pipeline's config has its defaults in the schema.
    schema = _deployment(server, "collect")["parameter_openapi_schema"]
    assert schema["properties"]["cfg"]["default"]["search"]["max_results"] > 0
    before = _state(server)
    assert len(before["triggers"]) == 2
    # A second `howto deploy` finds everything in place: the same pools, limit, deployments and triggers.
    out = run_checked([sys.executable, "-m", "flows.cli", "deploy", "--data-root", str(job_root)], server.env)
    assert "kept  work pool cpu (process)" in out and "kept  concurrency limit gpu = 1" in out
    assert _state(server) == before
    with temporary_settings({PREFECT_API_URL: server.api}):
        assert {s.action for s in ensure_pools()} == {"kept"}
        assert ensure_gpu_limit(2).action == "updated (was 1)"
        # Two slots of the real limit, each run on the machine's GPU that is free, given back at the end.
        locks = job_root.parent / "gpu-locks"
        two = lambda: ["GPU-a", "GPU-b"]  # noqa: E731
        with gpu_slot("cuda", two, lock_dir=locks) as first:
            with gpu_slot("cuda", two, lock_dir=locks) as second:
                assert (first, second) == ("cuda:0", "cuda:1")
        assert ensure_gpu_limit(1).action == "updated (was 2)"
        assert check_gpu_limit() == 1
        with pytest.raises(GpuLimitMissing, match="'gpu-never-made' does not exist: run `howto deploy`"):
            with gpu_slot("cuda", lambda: ["GPU-a"], "gpu-never-made", locks):
                pass
        with gpu_slot("cpu", lambda: [], "gpu-never-made", locks) as device:  # CPU work needs no limit
            assert device == "cpu"


@pytest.mark.slow
def test_collect_triggers_features_on_gpu_pool_then_training(
    server: Server, job_root: Path, demo_site: Any, procs: Processes
) -> None:
    cfg = _small_demo(demo_site.url)
    # No data_root parameter: every run of the chain takes it from its deployment's job variables.
    out = server.prefect("deployment", "run", "pipeline/collect", "--params",
                         json.dumps({"cfg": cfg.model_dump(mode="json")}))  # fmt: skip
    collect_id = flow_run_id(out)
    server.worker(procs, "cpu", "worker-cpu.log")
    server.worker(procs, "gpu", "worker-gpu.log")
    logs = [server.logs / "worker-cpu.log", server.logs / "worker-gpu.log"]
    features, train = _deployment(server, "features"), _deployment(server, "train")

    def trained() -> dict[str, Any] | None:
        chain = [
            server.get(f"/flow_runs/{collect_id}"),
            *_runs_of(server, features),
            *_runs_of(server, train),
        ]
        for run in chain:  # a failed link fails the test now, not after the deadline
            assert run["state_type"] not in TERMINAL - {"COMPLETED"}, f"{run['name']}: {run['state_type']}"
        runs = [r for r in _runs_of(server, train) if r["state_type"] == "COMPLETED"]
        return runs[0] if runs else None

    train_run = wait_for(trained, 900, "collect -> features -> train", logs)
    (features_run,) = _runs_of(server, features)
    assert features_run["state_type"] == "COMPLETED" and features_run["work_pool_name"] == "gpu"
    # The triggered runs carried the collection's config and no data root of their own.
    assert features_run["parameters"]["stages"] == ["features", "audio"]
    assert features_run["parameters"]["cfg"]["tasks"]["max_articles"] == 3
    assert features_run["parameters"]["data_root"] is None and train_run["parameters"]["data_root"] is None
    gpu_log = (server.logs / "worker-gpu.log").read_text(errors="replace")
    cpu_log = (server.logs / "worker-cpu.log").read_text(errors="replace")
    assert f"submitting flow run '{features_run['id']}'" in gpu_log
    assert f"submitting flow run '{collect_id}'" in cpu_log and features_run["id"] not in cpu_log

    root = DataRoot.from_any(str(job_root))
    videos = query("SELECT count(*) FROM video_catalog WHERE keep", root.url).rows[0][0]
    featured = query("SELECT count(DISTINCT video_id) FROM frame_features WHERE status = 'ok'", root.url).rows
    assert videos > 0 and featured[0][0] == videos
    # The gpu-pool run also made the audio features, from the tracks the features stage kept.
    audio = query("SELECT count(DISTINCT video_id) FROM audio_features WHERE status = 'ok'", root.url).rows
    assert audio[0][0] == videos
    checkpoints = sorted(Path(root.url, "train").glob("*/checkpoints/epoch-*.pt"))
    assert [p.name for p in checkpoints] == ["epoch-1.pt", "epoch-2.pt"]
    # The UI's artifacts: a table per stage, and the training progress at 100% after two epochs.
    keys = {a["key"] for a in server.post("/artifacts/filter")}
    assert {"mine-tasks-shards", "fetch-captions-shards", "extract-features-shards"} <= keys
    progress = server.post("/artifacts/filter", {"artifacts": {"type": {"any_": ["progress"]}}})
    assert any(a["key"].endswith("-epochs") and a["data"] == 100.0 for a in progress)
    shutil.rmtree(job_root)


@pytest.mark.slow
def test_two_workers_share_one_deployments_shards(
    server: Server, job_root: Path, demo_site: Any, procs: Processes
) -> None:
    root = server.logs / "shared-root"
    logs = [server.logs / "worker-a.log", server.logs / "worker-b.log"]
    for log in logs:
        server.worker(procs, "cpu", log.name, "--limit", "1")
    wait_for(lambda: True if len(server.post("/work_pools/cpu/workers/filter")) >= 2 else None, 120,
             "two workers online", logs)  # fmt: skip
    ids = []
    for part in (0, 1):
        cfg = _small_demo(demo_site.url, part=part, parts=2)
        cfg = cfg.model_copy(
            update={"tasks": cfg.tasks.model_copy(update={"max_articles": None, "shard_size": 3})}
        )
        params = {"cfg": cfg.model_dump(mode="json"), "data_root": str(root), "stages": ["tasks"]}
        ids.append(
            flow_run_id(
                server.prefect("deployment", "run", "pipeline/collect", "--params", json.dumps(params))
            )
        )

    def finished() -> list[dict[str, Any]] | None:
        runs = [server.get(f"/flow_runs/{i}") for i in ids]
        for run in runs:
            assert run["state_type"] not in TERMINAL - {"COMPLETED"}, f"{run['name']}: {run['state_type']}"
        return runs if all(r["state_type"] == "COMPLETED" for r in runs) else None

    wait_for(finished, 300, "both shares of the deployment", logs)
    # Each run ran under exactly one worker, one run each. (Both workers may try to claim the same run;
    # the server lets one move it to PENDING and aborts the other: that is what keeps a run from running twice.)
    texts = [log.read_text(errors="replace") for log in logs]
    ran = [[i for i in ids if f"/runs/flow-run/{i}" in text] for text in texts]
    assert sorted(len(r) for r in ran) == [1, 1] and set(ran[0]) != set(ran[1]), ran
    # Each run's table artifact lists the shards it did: disjoint, none cached, together every shard.
    subflows = sorted(_subflows_of(server, ids))
    tables = server.post("/artifacts/filter", {"artifacts": {"key": {"any_": ["mine-tasks-shards"]},
                                                             "flow_run_id": {"any_": subflows}}})  # fmt: skip
    done = [_table_rows(a) for a in tables]
    assert len(done) == 2 and all(done)
    assert not any(row["cached"] for rows in done for row in rows)
    first, second = ({row["shard"] for row in rows} for rows in done)
    assert not first & second
    assert sorted(first | second) == list(range(len(first | second))) and len(first | second) >= 4
    rows = query("SELECT count(*) FROM tasks", str(root)).rows[0][0]
    assert rows == len(demo_site.world.articles)


def _table_rows(artifact: dict[str, Any]) -> list[dict[str, Any]]:
    data = artifact["data"]
    return json.loads(data) if isinstance(data, str) else data


def _subflows_of(server: Server, parent_ids: list[str]) -> set[str]:
    """Ids of the subflow runs whose parent task ran in one of `parent_ids` (where stage artifacts live)."""
    tasks = server.post("/task_runs/filter", {"task_runs": {"flow_run_id": {"any_": parent_ids}}})
    task_ids = [t["id"] for t in tasks]
    subflows = server.post("/flow_runs/filter", {"flow_runs": {"parent_task_run_id": {"any_": task_ids}}})
    return {r["id"] for r in subflows}


def _decoding(video_id: str) -> bool:
    """True while an ffmpeg decodes `video_id`'s frames (the frame pipes, not its ffprobe)."""
    out = subprocess.run(["ps", "-ww", "-eo", "args="], capture_output=True, text=True).stdout
    return any(
        "ffmpeg" in line and "-filter_complex" in line and video_id in line for line in out.splitlines()
    )


@pytest.mark.slow
def test_a_features_run_cancelled_mid_decode_counts_no_failed_attempt(
    server: Server, job_root: Path, procs: Processes, tmp_path: Path
) -> None:
    """Cancelling a run: the runner SIGTERMs its process group, the ffmpeg decoding a video included. The
    shard task (in another thread than Prefect's TerminationSignal) took that exit for a broken file and
    finished its shard: the cancelled run wrote the healthy video's error row and counted a failed attempt
    (three cancels gave it up for good)."""
    short, long = "cancelshort", "cancellong1"  # ids no other test's ffmpeg decodes (ps sees every process)
    root = root_with_downloaded_videos(tmp_path, {short: 2, long: 600})
    cfg = {"random_weights": True, "decode_workers": 1}  # the full input sizes: LONG decodes for minutes
    out = server.prefect("deployment", "run", "extract_features/extract-features", "--params",
                         json.dumps({"cfg": cfg, "data_root": root.url}))  # fmt: skip
    run_id = flow_run_id(out)
    logs = [server.logs / "worker-cancel.log"]
    server.worker(procs, "gpu", logs[0].name)
    deadline = time.monotonic() + 300
    while not _decoding(long):
        run = server.get(f"/flow_runs/{run_id}")
        assert run["state_type"] not in TERMINAL and time.monotonic() < deadline, run["state_type"]
        time.sleep(0.2)
    server.prefect("flow-run", "cancel", run_id)

    def ended() -> str | None:
        state = str(server.get(f"/flow_runs/{run_id}")["state_type"])
        return state if state in TERMINAL else None

    assert wait_for(ended, 120, "the cancelled run's end", logs) == "CANCELLED"
    work = Path(root.path("_work", "frame_features"))
    attempts = [json.loads(p.read_text()) for p in work.glob("*/decode_attempts.json")]
    assert all(long not in counts for counts in attempts), attempts
    assert read_marker(root, "frame_features", 0) is None  # no shard written with an error row
    assert {p.stem for p in work.glob("*/*.parquet")} == {short}  # done before the cancel: kept


def test_a_triggered_run_takes_the_data_root_its_upstream_run_was_given_as_a_job_variable(
    server: Server, job_root: Path
) -> None:
    """The README's per-run override, `--job-variable env='{"HOWTO_DATA_ROOT": ...}'`, on a collect run:
    the features run its completion triggered had no data_root and so ran on the deployment's root (a
    trigger cannot pass job variables on), and the training after it too: the chain left the override root."""
    features = _deployment(server, "features")
    earlier = {r["id"] for r in _runs_of(server, features)}
    override = str(server.logs / "override-root")
    out = server.prefect("deployment", "run", "pipeline/collect", "--params", json.dumps({"stages": ["tasks"]}),
                         "--job-variable", "env=" + json.dumps({"HOWTO_DATA_ROOT": override}))  # fmt: skip
    collect_id = flow_run_id(out)
    new: list[str] = []
    try:
        # No worker: the run is moved to Completed through the API, which emits the event the trigger watches.
        for state in ("RUNNING", "COMPLETED"):
            server.post(f"/flow_runs/{collect_id}/set_state", {"state": {"type": state}, "force": True})

        def triggered() -> list[dict[str, Any]] | None:
            runs = [r for r in _runs_of(server, features) if r["id"] not in earlier]
            new.extend(r["id"] for r in runs if r["id"] not in new)
            return runs or None

        (run,) = wait_for(triggered, 60, "the features run collect's completion triggers", [])
        assert run["parameters"]["data_root"] == override
        assert run["parameters"]["stages"] == ["features", "audio"]
    finally:  # never left for a later test's gpu worker to run
        for run_id in [*new, collect_id]:
            httpx.delete(f"{server.api}/flow_runs/{run_id}", timeout=30)
