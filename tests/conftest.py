"""Session-wide fixtures shared by every test package (others add theirs below)."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator

import pytest

# Tests are CPU-only (house rule): on a machine with a GPU, "auto" devices would otherwise take the CUDA
# path and test something else than CI does. GPU figures come from `howto bench ... --device cuda`.
# Set before any test touches torch.cuda (CUDA reads it once, at its first use).
os.environ["CUDA_VISIBLE_DEVICES"] = ""

from tasks.demo.site import DemoSite  # noqa: E402
from tasks.demo.world import World, build_world, default_cache_dir  # noqa: E402

# `--cookies`/`--proxy` reach a command's shard tasks through this process's environment (flows/cli_access.py):
# a command run in process (CliRunner) leaves them set. Paths there name a test's tmp folder, gone later.
ACCESS_ENV = ("HOWTO_YTDLP_COOKIES", "HOWTO_YTDLP_PROXY", "HOWTO_YTDLP_PO_TOKEN")


@pytest.fixture(autouse=True)
def access_environment_as_it_was() -> Iterator[None]:
    """Put back, after each test, the YouTube access variables as they were before it: a cookies path one
    test's command exported is a file that no longer exists for the next (which then refuses to run)."""
    saved = {name: os.environ.get(name) for name in ACCESS_ENV}
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _handlers_on_closed_streams() -> list[tuple[logging.Logger, logging.Handler]]:
    loggers = [logging.getLogger()]
    loggers += [lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    return [
        (logger, handler)
        for logger in loggers
        for handler in logger.handlers
        if getattr(getattr(handler, "stream", None), "closed", False)
    ]


@pytest.fixture(autouse=True)
def no_log_handler_outlives_its_stream() -> Iterator[None]:
    """Drop, after each test, every log handler whose stream is closed: each CliRunner test starts as if alone.

    Prefect sets up its logging once per process, at the first `from prefect import flow`, and binds its
    console handler to the sys.stderr of that moment (`ext://sys.stderr` in its logging.yml). When that
    import happens inside a CliRunner invocation (the `train` command imports its flow lazily), that is
    the invocation's capture, closed when the invocation returns. Under pytest the root logger holds
    pytest's capture handlers, so our `setup_logging` (basicConfig) adds nothing and Prefect puts its
    console handler on the root logger: every later warning, in any later test, went to the closed
    stream and printed a "--- Logging error ---" traceback into that test's captured stderr. (`howto`
    itself is not hit: there the root logger holds our CurrentStderrHandler, which follows sys.stderr,
    and Prefect leaves a root logger with a user's handler alone.)
    """
    yield
    for logger, handler in _handlers_on_closed_streams():
        logger.removeHandler(handler)


@pytest.fixture(scope="session")
def demo_world() -> World:
    """The seed-0 demo world, built once into the stable user cache (later runs reuse its videos)."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed: the demo world cannot render its videos")
    world = build_world(default_cache_dir(), seed=0)
    print(f"\ndemo world: {len(world.videos)} videos ready in {world.build_s:.1f}s")
    return world


@pytest.fixture(scope="session")
def demo_site(demo_world: World) -> Iterator[DemoSite]:
    """The demo site on 127.0.0.1 for the whole session; $HOWTO_DEMO_URL points subprocesses at it.

    Tests that switch troubles or worlds must switch them back (see tests/tasks/demo/conftest.py).
    """
    previous = os.environ.get("HOWTO_DEMO_URL")
    with DemoSite(demo_world) as site:
        os.environ["HOWTO_DEMO_URL"] = site.url
        try:
            yield site
        finally:
            if previous is None:
                os.environ.pop("HOWTO_DEMO_URL", None)
            else:
                os.environ["HOWTO_DEMO_URL"] = previous


# The files with the longest tests go first: with two xdist workers taking a file at a time, the crash/soak
# test then runs beside everything else instead of alone at the end (longest-first keeps the wall time
# close to total / 2). xdist keeps this order only with --no-loadscope-reorder (the Makefile passes it): by
# default it sorts files by their number of tests, which put the one-test soak file last. Without xdist
# the order only changes when the slow tests report.
LONGEST_FIRST = (
    "tests/pipeline/test_crash_resume.py",
    "tests/tasks/train/test_training_demo_world.py",  # builds the demo world's features, then trains
    "tests/pipeline/test_retried_upstream.py",
    "tests/deploy/test_deployment.py",  # a server, two deploys, the collect -> features -> train chain
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: every other test keeps its order


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Flows run in-process leave Prefect events and API logs queued; at interpreter exit Prefect's queue
    # services drop what their server (gone by then) cannot take, and warn "Still processing items: N" from
    # a thread that runs after pytest has closed the stream the handler writes to. Each xdist worker then
    # printed a 50-line "--- Logging error ---" traceback at the end of the run, which no test checks and
    # which reads like a failure. Nothing else logs there after the session, so those two loggers go quiet.
    for service in ("EventsWorker", "APILogWorker"):
        logging.getLogger(service).disabled = True
