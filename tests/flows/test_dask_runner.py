"""A stage's shard tasks run on a Dask cluster of separate worker processes (prefect-dask) and write the
same data as threads in one process."""

from __future__ import annotations

import os
from pathlib import Path

import dask
import pytest
from distributed import Client, LocalCluster, get_task_stream

from flows.demo import demo_pipeline_config
from flows.mine_tasks import mine_tasks
from flows.runtime import RunnerConfig, with_runner
from storage.catalog import query


@pytest.mark.slow
def test_mine_tasks_on_dask_worker_processes(demo_site, tmp_path: Path) -> None:
    cfg = demo_pipeline_config(demo_site.url).tasks.model_copy(update={"shard_size": 3})
    dask_root, thread_root = tmp_path / "dask", tmp_path / "threads"
    with (
        # Its scratch folder (lock files that outlive the cluster) in the test's folder, not /tmp.
        dask.config.set({"temporary-directory": str(tmp_path / "dask-scratch")}),
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        worker_pids = set(client.run(os.getpid).values())
        assert len(worker_pids) == 2 and os.getpid() not in worker_pids
        runner = RunnerConfig(task_runner="dask", dask_address=cluster.scheduler_address)
        with get_task_stream(client) as stream:
            on_dask = with_runner(mine_tasks, runner)(cfg, str(dask_root))
        workers = set(client.scheduler_info()["workers"])
    # Every task ran in one of the worker processes, none in this one (the flow only submits and waits).
    ran_on = {task["worker"] for task in stream.data}
    assert ran_on and ran_on <= workers
    assert len(stream.data) >= on_dask["shards"]
    on_threads = with_runner(mine_tasks, RunnerConfig(task_runner="threads"))(cfg, str(thread_root))
    assert on_dask["shards"] == on_threads["shards"] >= 4
    assert on_dask["rows_out"] == on_threads["rows_out"]
    sql = "SELECT * FROM tasks ORDER BY task_id, title"
    assert query(sql, str(dask_root)).rows == query(sql, str(thread_root)).rows
    assert len(query(sql, str(dask_root)).rows) == len(demo_site.world.articles)
