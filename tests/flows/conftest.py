"""Flow tests run against one temporary Prefect server per pytest session (stopped at the end)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from tasks.demo.site import DemoSite


@pytest.fixture(scope="session", autouse=True)
def prefect_server() -> Iterator[None]:
    # PREFECT_HOME per test run, so nothing leaks into (or from) the user's Prefect profile.
    home = tempfile.mkdtemp(prefix="howto-prefect-home-")
    os.environ["PREFECT_HOME"] = home
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from prefect.testing.utilities import prefect_test_harness

    try:
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
