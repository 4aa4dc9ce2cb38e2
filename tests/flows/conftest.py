"""Flow tests run against one temporary Prefect server per pytest session (stopped at the end)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from tasks.demo.site import DemoSite

EVENTS_DRAIN_S = 5.0


@pytest.fixture(scope="session", autouse=True)
def prefect_server() -> Iterator[None]:
    # PREFECT_HOME per test run, so nothing leaks into (or from) the user's Prefect profile.
    home = tempfile.mkdtemp(prefix="howto-prefect-home-")
    os.environ["PREFECT_HOME"] = home
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from prefect.events.worker import EventsWorker
    from prefect.testing.utilities import prefect_test_harness

    # The harness drains Prefect's event queues before stopping its server, with no time limit. Flows run
    # in-process leave a backlog there (seen: 280 and 698 events, heartbeats, artifacts, task-run states,
    # for one client), sent one by one: that teardown took minutes, and once hung a CI run. They are not
    # what any test checks, so the drain gets a bound; what is left is dropped at exit, when Prefect logs
    # "connection refused" for it (the server is gone by then).
    drain_all = EventsWorker.drain_all.__func__  # type: ignore[attr-defined]

    def bounded_drain(cls: type, timeout: float | None = None, at_exit: bool = True) -> object:
        return drain_all(cls, timeout=EVENTS_DRAIN_S if timeout is None else timeout, at_exit=at_exit)

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(EventsWorker, "drain_all", classmethod(bounded_drain))
            with prefect_test_harness(server_startup_timeout=120):
                yield
    finally:
        shutil.rmtree(home, ignore_errors=True)  # its database and logs: nothing to keep after the run


@pytest.fixture
def site(demo_site: DemoSite) -> Iterator[DemoSite]:
    """The session's demo site with no troubles on, and none left on afterwards."""
    demo_site.set_troubles()
    yield demo_site
    demo_site.set_troubles()
