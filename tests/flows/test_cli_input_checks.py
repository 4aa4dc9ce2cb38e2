"""Options and config values refused up front in one line (exit 2, naming the option), and failures that
end quickly instead of being retried for minutes."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flows.cli_errors import expected_cause
from tasks.wikihow.client import RobotsUnavailable, SiteUnreachable
from tests.flows.cli_checks import invoke, one_error_line

runner = CliRunner()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- site URLs ----------------------------------------------------------------------------------------


def test_site_urls_are_checked_before_any_request(tmp_path: Path) -> None:
    root = str(tmp_path / "data")
    for bad in ("notaurl", "ftp://127.0.0.1/", "http://", "http://127.0.0.1:0"):
        one_error_line(
            invoke("tasks", "mine", "--base-url", bad, "--data-root", root), "--base-url", repr(bad)
        )
        one_error_line(
            invoke("search-videos", "--demo-url", bad, "--data-root", root), "--demo-url", "http(s) URL"
        )
    one_error_line(
        invoke("pipeline", "--stage", "tasks", "--set", "tasks.base_url=notaurl", "--data-root", root),
        "tasks.base_url",
        "http(s) URL",
    )


def test_robots_and_unreachable_sites_are_expected_failures() -> None:
    assert expected_cause(RobotsUnavailable("HTTP 503")) is not None
    assert expected_cause(SiteUnreachable("http://127.0.0.1:9", OSError("refused"))) is not None


def test_mining_a_site_that_refuses_the_first_connection_fails_fast(tmp_path: Path) -> None:
    port = closed_port()
    started = time.monotonic()
    result = invoke("tasks", "mine", "--base-url", f"http://127.0.0.1:{port}", "--data-root", str(tmp_path))
    elapsed = time.monotonic() - started
    assert result.exit_code == 2 and "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot connect to http://127.0.0.1:{port} "), result.stderr
    assert elapsed < 60, elapsed  # no back-off, no Prefect retry (they took 2 min 19 s)


# -- devices and worker counts --------------------------------------------------------------------------

DEVICES = "auto, cpu, cuda or cuda:N"


def test_device_options_take_auto_cpu_cuda_or_cuda_n(tmp_path: Path) -> None:
    root = str(tmp_path / "data")
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not read: the option is refused first")
    for bad in ("tpu", "cuda:x", "CUDA", "cuda:"):
        for args in (
            ["train", "--device", bad, "--data-root", root],
            ["bench", "train", "--device", bad],
            ["bench", "features", "--device", bad],
            ["features", "extract", str(video), "--out", str(tmp_path / "f.parquet"), "--device", bad],
            ["features", "run", "--device", bad, "--data-root", root],
        ):
            one_error_line(invoke(*args), "--device", repr(bad), DEVICES)


def test_device_config_fields_are_checked(tmp_path: Path) -> None:
    root = str(tmp_path / "data")
    for field in ("train.device", "features.device"):
        one_error_line(invoke("pipeline", "--set", f"{field}=tpu", "--data-root", root), field, DEVICES)
    # The audio stage hands its device straight to torch: no "auto" there.
    one_error_line(
        invoke("pipeline", "--set", "audio.device=auto", "--data-root", root), "audio.device", "cpu, cuda"
    )
    ok = invoke("pipeline", "--set", "train.device=cuda:1", "--set", "features.device=cpu", "--print-config")
    assert ok.exit_code == 0 and "device: cuda:1" in ok.stdout, ok.output


def test_cuda_on_a_machine_without_it_is_one_line(tmp_path: Path, monkeypatch: Any) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    root = str(tmp_path / "data")
    for args in (
        ["train", "--device", "cuda", "--data-root", root],
        ["bench", "train", "--device", "cuda"],
        ["features", "run", "--device", "cuda", "--data-root", root],
    ):
        one_error_line(invoke(*args), "--device cuda: no CUDA device here")
    one_error_line(  # fp16 is CUDA's: refused before any shard task, naming both options
        invoke("features", "run", "--precision", "fp16", "--device", "cpu", "--data-root", root),
        "--precision fp16 --device cpu: fp16 is for CUDA",
    )
    one_error_line(
        invoke("pipeline", "--stage", "train", "--set", "train.device=cuda:0", "--data-root", root),
        "train.device cuda:0: no CUDA device here",
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    one_error_line(invoke("bench", "train", "--device", "cuda:3"), "--device cuda:3: this machine has 1 CUDA")


def test_worker_counts_below_one_name_the_option(tmp_path: Path) -> None:
    one_error_line(
        invoke("pipeline", "--workers", "0", "--print-config"), "'--workers'", "greater than or equal to 1"
    )
    one_error_line(
        invoke("pipeline", "--set", "runner.max_workers=0", "--print-config"), "runner.max_workers"
    )


# -- small ones ---------------------------------------------------------------------------------------


def test_bench_search_needs_at_least_one_video() -> None:
    for bad in ("-1", "0"):
        one_error_line(invoke("bench", "search", "--videos", bad), "'--videos'", "greater than or equal to 1")


def test_captions_parse_of_a_directory_says_so(tmp_path: Path) -> None:
    one_error_line(invoke("captions", "parse", str(tmp_path)), f"{tmp_path}: is a directory")


# -- Prefect's own log lines about an expected failure ------------------------------------------------


def test_a_flow_that_fails_as_expected_prints_only_the_error_line(tmp_path: Path) -> None:
    """The installed `howto`, where Prefect's logging is live: its ERROR lines about the failed task and
    flow run stay off the terminal; the CLI's line says it once. (-v bringing the traceback back from a
    failed flow run: tests/flows/test_cli_failures.py::test_missing_weights_inside_a_flow_run.)"""
    howto = str(Path(sys.executable).with_name("howto"))
    args = ["tasks", "mine", "--base-url", f"http://127.0.0.1:{closed_port()}", "--data-root", str(tmp_path)]
    from prefect.settings import PREFECT_API_URL

    # The session's server (a temporary one per run would cost this test 15 s): the flow and task runs,
    # and their log lines, are the same.
    api = str(PREFECT_API_URL.value())
    env = {**os.environ, "PREFECT_LOGGING_LEVEL": "INFO", "PREFECT_API_URL": api}  # a user's terminal
    plain = subprocess.run([howto, *args], capture_output=True, text=True, timeout=300, env=env)
    assert plain.returncode == 2, plain.stderr
    lines = plain.stderr.strip().splitlines()
    assert [line for line in lines if " ERROR " in line or "Traceback" in line] == [], plain.stderr
    assert [line for line in lines if "cannot connect" in line] == [lines[-1]], plain.stderr
    assert lines[-1].startswith("error: cannot connect to http://127.0.0.1:")


def test_a_configured_prefect_api_that_does_not_answer_is_one_line(tmp_path: Path) -> None:
    """PREFECT_API_URL set to a server that is down: every flow command ended in Prefect's "Failed to reach
    API" traceback (exit 1)."""
    howto = str(Path(sys.executable).with_name("howto"))
    api = f"http://127.0.0.1:{closed_port()}/api"
    env = {**os.environ, "PREFECT_API_URL": api}
    for args in (
        ["tasks", "mine", "--base-url", "http://127.0.0.1:9", "--data-root", str(tmp_path / "a")],
        ["pipeline", "--stage", "tasks", "--set", "tasks.base_url=http://127.0.0.1:9", "--data-root",
         str(tmp_path / "b")],
    ):  # fmt: skip
        proc = subprocess.run([howto, *args], capture_output=True, text=True, timeout=300, env=env)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert len(lines) == 1 and lines[0].startswith(f"error: Prefect API {api} not reachable"), proc.stderr


def test_run_log_records_of_expected_failures_skip_only_the_console() -> None:
    from flows.cli_common import _QuietRunLogs

    class Keep(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    parent, logger = logging.getLogger("howto-test-runs"), logging.getLogger("howto-test-runs.flow")
    console, api = Keep(), Keep()
    parent.addHandler(console)
    logger.addHandler(api)
    logger.addFilter(_QuietRunLogs())
    logger.setLevel(logging.INFO)
    try:
        unreachable = SiteUnreachable("http://127.0.0.1:9", OSError("refused"))
        try:
            raise unreachable
        except SiteUnreachable:
            logger.exception("Encountered exception during execution: %r", unreachable)
        logger.error("Finished in state Failed('Task run encountered an exception RobotsUnavailable: x')")
        logger.info("Finished in state Failed('Flow run encountered an exception: SiteUnreachable: x')")
        logger.info("Task run failed with exception: SiteUnreachable('x') - Retry 1/2 will start soon")
        try:
            raise ValueError("a bug")
        except ValueError as bug:
            logger.exception("Encountered exception during execution: %r", bug)
    finally:
        parent.removeHandler(console)
        logger.removeHandler(api)
    assert len(api.records) == 5  # the run's own logs (Prefect's API) get everything
    shown = [r.getMessage() for r in console.records]
    assert shown == [
        "Task run failed with exception: SiteUnreachable('x') - Retry 1/2 will start soon",
        "Encountered exception during execution: ValueError('a bug')",  # a bug stays visible
    ]
    assert console.records[1].exc_info is None  # its traceback without -v: the CLI prints it


# -- crawl ids --------------------------------------------------------------------------------------------


def test_crawl_ids_that_could_lead_out_of_the_data_root_are_refused(tmp_path: Path) -> None:
    """A crawl id names the crawl caches' folders: `tasks mine --crawl-id ../../x` wrote them outside the data
    root. Every --crawl-id and every config's crawl_id take the same ids, and refuse the rest in one line."""
    root = tmp_path / "data"
    tasks_file = tmp_path / "tasks.txt"
    tasks_file.write_text("Grill a steak\n")
    for bad in ("../../escape", "..", ".hidden", "", "a/b", "x" * 65):
        one_error_line(
            invoke(
                "tasks",
                "mine",
                "--base-url",
                "http://127.0.0.1:9",
                "--crawl-id",
                bad,
                "--data-root",
                str(root),
            ),
            "--crawl-id",
            "is not a crawl id",
        )
        one_error_line(
            invoke(
                "tasks",
                "import",
                str(tasks_file),
                "--format",
                "lines",
                "--crawl-id",
                bad,
                "--data-root",
                str(root),
            ),
            "--crawl-id",
        )
        one_error_line(
            invoke("videos", "import", str(tmp_path), "--crawl-id", bad, "--data-root", str(root)),
            "--crawl-id",
        )
        for stage in ("tasks", "search"):
            one_error_line(
                invoke(
                    "pipeline", "--stage", stage, "--set", f"{stage}.crawl_id={bad}", "--data-root", str(root)
                ),
                f"{stage}.crawl_id",
            )
    assert not root.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["tasks.txt"]


# -- the demo world ---------------------------------------------------------------------------------------


def test_demo_seeds_are_not_negative_and_the_world_cache_must_be_a_folder(tmp_path: Path) -> None:
    """numpy's generators take no negative seed: `--seed -1` ended in its traceback after the demo started;
    a --world-dir that is (or sits under) a file ended in NotADirectoryError's."""
    root = str(tmp_path / "data")
    for argv in (("demo-site", "build"), ("demo-site", "serve"), ("demo", "--data-root", root)):
        one_error_line(invoke(*argv, "--seed", "-1"), "--seed", "greater than or equal to 0")
    one_error_line(invoke("train", "--seed", "-1", "--data-root", root), "--seed")
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    one_error_line(
        invoke("demo", "--world-dir", str(blocker), "--data-root", root), str(blocker), "is a file"
    )
    one_error_line(
        invoke("demo", "--world-dir", str(blocker / "sub"), "--data-root", root),
        str(blocker / "sub"),
        "Not a directory",
    )
    assert blocker.read_text() == "x" and not Path(root).exists()


def test_a_cookies_file_named_by_the_environment_is_checked_like_cookies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`export HOWTO_YTDLP_COOKIES=TYPO` went to yt-dlp, which skips a missing cookies file silently: the run
    went out without cookies, exit 0. Refused as `--cookies TYPO` is; --cookies itself still wins."""
    root = str(tmp_path / "data")
    missing = tmp_path / "cookies.txt"
    monkeypatch.setenv("HOWTO_YTDLP_COOKIES", str(missing))
    for command in (["search-videos"], ["captions", "fetch"]):
        one_error_line(
            invoke(*command, "--data-root", root), f"$HOWTO_YTDLP_COOKIES={missing}: no such cookies file"
        )
    monkeypatch.setenv("HOWTO_YTDLP_COOKIES", str(tmp_path))
    one_error_line(invoke("search-videos", "--data-root", root), "is a directory, not a cookies file")
    monkeypatch.delenv("HOWTO_YTDLP_COOKIES")
    # with the variable unset, the commands get past the check (to the missing upstream stage)
    one_error_line(invoke("captions", "fetch", "--data-root", root), "run the search stage first")


def test_errors_name_the_option_the_user_typed(tmp_path: Path) -> None:
    root = str(tmp_path / "data")
    one_error_line(invoke("audio", "run", "--audio-encoder", "bogus", "--data-root", root), "--audio-encoder")
    one_error_line(invoke("captions", "fetch", "--rate", "-1", "--data-root", root), "--rate")
    one_error_line(
        invoke("train", "compare", "--control", "bogus", "--data-root", root), "--control", "bogus"
    )
    one_error_line(invoke("demo", "--site-url", "foo", "--data-root", root), "--site-url", "http(s) URL")


def test_a_folder_where_a_file_goes_and_a_file_where_a_folder_goes_are_named_as_such(tmp_path: Path) -> None:
    root = str(tmp_path / "data")
    Path(root).mkdir()  # the eval commands read an existing root
    folder, afile = tmp_path / "folder", tmp_path / "afile"
    folder.mkdir()
    afile.write_text("x")
    one_error_line(
        invoke("captions", "fetch", "--cookies", str(folder), "--data-root", root), "is a directory"
    )
    one_error_line(
        invoke(
            "eval", "youcook2", "--annotations", str(folder), "--videos", str(folder), "--data-root", root
        ),
        str(folder),
        "is a directory, not a file",
    )
    one_error_line(
        invoke("eval", "crosstask", "--release", str(afile), "--videos", str(folder), "--data-root", root),
        str(afile),
        "is a file, not a folder",
    )
