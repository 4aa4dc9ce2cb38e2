"""The pipeline tests' Prefect server: one per test that asks, stopped (process group) however it ends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.prefect_procs import Processes, start_server


@pytest.fixture
def prefect_api(tmp_path: Path) -> Iterator[str]:
    """One Prefect server for the runs that share it, stopped (process group) however the test ends.
    A temporary server costs each run about 10 s of start-up; the data's safety does not depend on it:
    the stages keep their state in shards and markers, not in Prefect."""
    logs = tmp_path / "server"
    logs.mkdir()
    procs = Processes()
    try:
        yield start_server(procs, logs).api
    finally:
        procs.stop_all()
