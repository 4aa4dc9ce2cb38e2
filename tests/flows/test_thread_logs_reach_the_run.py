"""What the stages' worker threads log reaches the Prefect run's logs (the UI), as it does from a task's own
thread: yt-dlp's error for a removed video, said in the probe pool's threads (search) and in the features
stage's download thread, and for a caption file cut short, said in the captions stage's download pool, used
to reach the worker's terminal only."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from flows.extract_features import extract_features
from flows.fetch_captions import fetch_captions
from flows.search_videos import search_videos
from storage.layout import DataRoot
from tasks.captions.config import FetchCaptionsConfig
from tasks.demo.site import DemoSite
from tasks.demo.troubles import Troubles
from tests.flows.test_features_download_halts import CFG as FEATURES_CFG
from tests.flows.test_features_download_halts import seed
from tests.flows.test_fetch_captions import access_for, pick, seed_root
from tests.flows.test_search_videos import access, config, make_root


@pytest.fixture
def logs_to_the_run() -> Iterator[None]:
    """The project's loggers send to the Prefect API, as PREFECT_LOGGING_EXTRA_LOGGERS (set by the CLI and
    prefect.yaml) makes them do; warnings and up, as a worker's default level shows."""
    from prefect.logging.handlers import APILogHandler

    handler = APILogHandler()
    handler.setLevel(logging.WARNING)
    logger = logging.getLogger("tasks")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def run_log_lines(flow_run_id: UUID) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)  # lines still queued in this process reach the server first
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [log.message for log in logs]


def removed_video_lines(lines: list[str], video_id: str) -> list[str]:
    return [line for line in lines if line.startswith("yt-dlp error") and video_id in line]


def test_a_probe_threads_ytdlp_error_is_in_the_search_runs_logs(
    site: DemoSite, tmp_path: Path, logs_to_the_run: None
) -> None:
    removed = next(v.id for v in site.world.videos if v.status == "ok")
    site.set_troubles(Troubles(removed={removed}))
    root = make_root(tmp_path, site)
    state = search_videos(config(), root.url, access(site), return_state=True)
    assert removed_video_lines(run_log_lines(state.state_details.flow_run_id), removed)


def test_a_download_threads_ytdlp_error_is_in_the_features_runs_logs(
    site: DemoSite, tmp_path: Path, logs_to_the_run: None
) -> None:
    root, ids = seed(tmp_path, site, n=2)
    site.set_troubles(Troubles(removed={ids[0]}))
    state = extract_features(FEATURES_CFG, root.url, access(site), return_state=True)
    assert state.is_completed()
    assert removed_video_lines(run_log_lines(state.state_details.flow_run_id), ids[0])
    assert state.result()["rows_out"] > 0  # the other video was extracted


def test_a_caption_download_threads_ytdlp_error_is_in_the_captions_runs_logs(
    site: DemoSite, tmp_path: Path, logs_to_the_run: None
) -> None:
    """The UI showed a captions run with an error row ('yt-dlp wrote no ... captions') and not yt-dlp's
    reason, 'Unable to download video subtitles ... bytes read', which the worker's terminal alone had."""
    root = DataRoot.from_any(tmp_path / "data")
    ids = pick(site.world)[:2]
    seed_root(root, site, ids)
    site.set_troubles(Troubles(truncated_captions=frozenset({ids[0]})))
    try:
        state = fetch_captions(FetchCaptionsConfig(), root.url, access_for(site), return_state=True)
    finally:
        site.set_troubles()
    assert state.is_completed() and state.result()["errors"] == 1
    lines = run_log_lines(state.state_details.flow_run_id)
    assert any(line.startswith("yt-dlp error: Unable to download video subtitles") for line in lines), lines
