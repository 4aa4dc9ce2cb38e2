"""A stage's shard tasks run on a local Dask cluster (prefect-dask) and write the same data as threads."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.demo import demo_pipeline_config
from flows.mine_tasks import mine_tasks
from flows.runtime import RunnerConfig, with_runner
from storage.catalog import query


@pytest.mark.slow
def test_mine_tasks_on_local_dask_cluster(demo_site, tmp_path: Path) -> None:
    cfg = demo_pipeline_config(demo_site.url).tasks.model_copy(update={"shard_size": 3})
    dask_root, thread_root = tmp_path / "dask", tmp_path / "threads"
    on_dask = with_runner(mine_tasks, RunnerConfig(task_runner="dask", max_workers=2))(cfg, str(dask_root))
    on_threads = with_runner(mine_tasks, RunnerConfig(task_runner="threads"))(cfg, str(thread_root))
    assert on_dask["shards"] == on_threads["shards"] >= 4
    assert on_dask["rows_out"] == on_threads["rows_out"]
    sql = "SELECT task_id, title, keep, drop_reason FROM tasks ORDER BY task_id, title"
    assert query(sql, str(dask_root)).rows == query(sql, str(thread_root)).rows
    assert len(query(sql, str(dask_root)).rows) == len(demo_site.world.articles)
