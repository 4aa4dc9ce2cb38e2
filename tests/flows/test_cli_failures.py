"""Every command's expected failures: one `error:` line on stderr, exit 2, no traceback; `-v` adds it.

Most cases call the typer app in-process (CliRunner); a few run the real `howto` in a subprocess, where
Prefect's own logging is live: a flow that fails on missing weights logs its traceback, which the
terminal must show only with -v.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flows.cli import app
from storage.layout import DataRoot
from storage.shards import write_shard
from tasks.demo.troubles import Troubles
from tests.storage.catalog_data import rows_table

HOWTO = str(Path(sys.executable).with_name("howto"))
runner = CliRunner()


class _CurrentStderr:
    """A file that is whatever sys.stderr is at each write (CliRunner swaps it per invoke)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


@pytest.fixture(autouse=True)
def prefect_console_follows_stderr() -> Iterator[None]:
    """Prefect binds its console handler to the sys.stderr of the moment it set up logging: in this
    process that may be an earlier CliRunner's capture, closed since. Here it writes to the current one,
    so a flow's own log lines land in the captured stderr the assertions read (as in a real terminal)."""
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger(), *(lg for lg in logging.Logger.manager.loggerDict.values()
                                      if isinstance(lg, logging.Logger))]  # fmt: skip
    handlers = {h for lg in loggers for h in lg.handlers if isinstance(h, PrefectConsoleHandler)}
    saved = {h: h.console.file for h in handlers}
    for handler in handlers:
        handler.console.file = _CurrentStderr()  # type: ignore[assignment]
    yield
    for handler, file in saved.items():
        handler.console.file = file


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


def assert_one_line(result: Any, *needles: str) -> str:
    """Exit 2, exactly one non-empty stderr line starting with `error:`, no traceback."""
    stderr = result.stderr
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def assert_traceback(result: Any, line: str) -> None:
    """With -v: the same exit code and last line, after the traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback (most recent call last)" in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1] == line


def check(args: list[str], *needles: str) -> None:
    line = assert_one_line(invoke(*args), *needles)
    assert_traceback(invoke("-v", *args), line)


def test_read_only_commands_refuse_a_missing_root_and_create_nothing(tmp_path: Path) -> None:
    root = tmp_path / "typo" / "data"
    commands = [
        ["stats"], ["query", "SELECT 1"], ["report"], ["catalog", "refresh"], ["eval", "heldout"],
        ["export", "hf", "--out", str(tmp_path / "hf")], ["search-clips", "slice zucchini"],
    ]  # fmt: skip
    for args in commands:
        assert_one_line(invoke(*args, "--data-root", str(root)), f"no data root at {root}")
    assert_traceback(invoke("-v", "stats", "--data-root", str(root)), f"error: no data root at {root}")
    assert list(tmp_path.iterdir()) == []  # not the root, not its parent, no catalog, no report folder


def test_stage_without_its_upstream_says_what_to_run_first(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    cases = {
        ("captions", "fetch"): "run the search stage first (howto search-videos)",
        ("features", "run", "--random-weights"): "run the search stage first (howto search-videos)",
        ("search-videos",): "run the tasks stage first (howto tasks mine",
        ("audio", "run"): "run the search stage first (howto search-videos)",
        ("recrawl",): "no finished tasks shards",
        ("pipeline", "--stage", "captions", "--stage", "train"): "no finished videos shards",
    }
    for args, needle in cases.items():
        assert_one_line(invoke(*args, "--data-root", str(root)), needle)
    check(["captions", "fetch", "--data-root", str(root)], "first")


def test_an_upstream_whose_only_shard_is_cut_short_is_missing_and_named(tmp_path: Path) -> None:
    """A shard file cut short after its marker (a copy cut short, a disk error) is left out by every
    reader: the stage checks used to count its marker anyway, so search-videos searched no task and
    reported success (exit 0, an empty crawl plan written), and captions fetch ran over no video."""
    tasks_root = tmp_path / "tasks-root"
    task = {"task_id": "t1", "title": "Make Pancakes", "keep": True, "status": "ok", "crawl_id": "crawl-0000"}
    write_shard(DataRoot.from_any(tasks_root), "tasks", 0, rows_table("tasks", [task]),
                config_hash="h", code_version="x", rows_in=1)  # fmt: skip
    videos_root = _videos_root(tmp_path)
    cases = [
        (tasks_root, "tasks", ["search-videos"], "run the tasks stage first"),
        (videos_root, "videos", ["captions", "fetch"], "run the search stage first"),
        (videos_root, "videos", ["features", "run", "--random-weights"], "run the search stage first"),
    ]
    for root, dataset, args, needle in cases:
        shard = Path(DataRoot.from_any(root).shard_path(dataset, 1, 0))
        if shard.stat().st_size > 100:
            shard.write_bytes(shard.read_bytes()[:100])
        before = sorted(p.relative_to(root) for p in root.rglob("*"))
        result = invoke(*args, "--data-root", str(root))
        assert result.exit_code == 2 and "Traceback" not in result.stderr, result.output
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: no finished {dataset} shards") and needle in last, last
        assert f"({shard}): shard file has 100 bytes, its marker says" in last, last
        assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # no plan, no catalog


def test_bad_config_values_name_the_field(tmp_path: Path) -> None:
    root = str(tmp_path / "data")
    check(["pipeline", "--set", "search.max_results=many", "--data-root", root], "search.max_results")
    bad = tmp_path / "bad.yaml"
    bad.write_text("search:\n  max_reslts: 3\n")
    assert_one_line(invoke("pipeline", "--config", str(bad), "--print-config"), "max_reslts")
    assert_one_line(invoke("tasks", "mine", "--rps", "0", "--data-root", root), "bad option rps")
    assert_one_line(invoke("recrawl", "--crawl-id", "weekly", "--data-root", root), "crawl-0001")


def test_bad_input_files_and_missing_weights(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not really a video")
    nope = tmp_path / "nope.pt"
    check(
        [
            "features",
            "extract",
            str(video),
            "--out",
            str(tmp_path / "f.parquet"),
            "--resnet-weights",
            str(nope),
        ],
        f"{nope}: no such weights file",
    )
    tasks = tmp_path / "tasks.csv"
    tasks.write_text("name\nMake Pancakes\n")
    check(["tasks", "import", str(tasks), "--format", "csv", "--data-root", str(tmp_path / "d")], str(tasks))
    info = tmp_path / "info.json"
    info.write_text("{not json")
    check(["youtube", "inspect", str(info)], "not JSON")


def test_bot_check_stops_the_stage_in_one_line(site: Any, tmp_path: Path) -> None:
    root = tmp_path / "data"
    tasks = tmp_path / "tasks.txt"
    tasks.write_text("\n".join(a.title for a in site.world.visual_tasks()[:1]) + "\n")
    assert invoke("tasks", "import", str(tasks), "--format", "lines", "--data-root", str(root)).exit_code == 0
    site.set_troubles(Troubles(bot_check=1000))
    args = ["search-videos", "--demo-url", site.url, "--rate", "0", "--data-root", str(root)]
    # Prefect's own log lines about the failed run come first (in this process its console handler
    # writes to the captured stderr); the CLI's line is the last, and no traceback is shown.
    result = invoke(*args)
    assert result.exit_code == 2 and "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: stopped: YouTube asks") and "--cookies" in last  # what to do


def _videos_root(tmp_path: Path) -> Path:
    """A data root with one finished `videos` shard, so the features stage gets as far as its weights."""
    root = tmp_path / "data"
    video = {"video_id": "a" * 11, "keep": True, "status": "ok", "crawl_id": "crawl-0000"}
    table = rows_table("videos", [video])
    write_shard(DataRoot.from_any(root), "videos", 0, table, config_hash="h", code_version="x", rows_in=1)
    return root


def test_missing_weights_fail_before_the_flow_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # One line in seconds, as `howto pipeline --stage features` says it: no flow run is started first (it
    # started a Prefect server and a flow run, then failed in it).
    import flows.extract_features

    started: list[object] = []
    monkeypatch.setattr(flows.extract_features, "extract_features", lambda *a: started.append(a))
    root = str(_videos_root(tmp_path))
    result = invoke("features", "run", "--data-root", root)
    assert result.exit_code == 2 and "Traceback" not in result.stderr, result.stderr
    assert not started
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: no resnet152 weights found: pass --resnet-weights (features.resnet_weights) PATH, or allow "
        "--random-weights (features.random_weights=true)"
    ]
    verbose = invoke("-v", "features", "run", "--data-root", root)
    assert verbose.exit_code == 2 and "Traceback (most recent call last)" in verbose.stderr
    assert errors[0] in verbose.stderr.splitlines()


def test_real_processes(tmp_path: Path) -> None:
    """The installed `howto` (what users run): the acceptance's /nonexistent root, and a missing upstream."""

    def howto(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([HOWTO, *args], capture_output=True, text=True, timeout=300)

    nowhere = "/nonexistent"
    if os.path.exists(nowhere):
        pytest.skip(f"{nowhere} exists on this machine")
    plain = howto("stats", "--data-root", nowhere)
    assert plain.returncode == 2 and plain.stderr == f"error: no data root at {nowhere}\n", plain.stderr
    assert not os.path.exists(nowhere)
    empty = tmp_path / "data"
    empty.mkdir()
    verbose = howto("-v", "captions", "fetch", "--data-root", str(empty))
    assert verbose.returncode == 2 and "Traceback (most recent call last)" in verbose.stderr
    assert verbose.stderr.splitlines()[-1].startswith("error: no finished videos shards"), verbose.stderr
