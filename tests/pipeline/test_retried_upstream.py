"""A `videos` shard rewritten by a retry run reaches captions, clips and features (it used to be lost).

Through the real CLI: `howto demo-site serve --trouble server_error=ID1,ID2` on a fixed port, one
`howto demo` run, the site served again without the fault, the same `howto demo` run again.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pyarrow.compute as pc
import pytest

from storage.layout import DataRoot
from storage.shards import list_markers, read_dataset, read_marker
from tasks.demo.world import World
from tests.pipeline.crash_helpers import pipeline_env

HOWTO = str(Path(sys.executable).with_name("howto"))
STAGES = ["--stage", "tasks", "--stage", "search", "--stage", "captions", "--stage", "features"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _serve(port: int, troubles: list[str]) -> Iterator[str]:
    """The demo site in its own process group, always killed (with its children) on the way out."""
    args = [HOWTO, "demo-site", "serve", "--port", str(port)]
    for trouble in troubles:
        args += ["--trouble", trouble]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                raise AssertionError(
                    f"demo-site exited: {proc.stderr.read().decode() if proc.stderr else ''}"
                )
            try:
                if httpx.get(f"{url}/robots.txt", timeout=2).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("demo-site did not come up")
            time.sleep(0.3)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def _demo(url: str, root: Path, env: dict[str, str]) -> None:
    proc = subprocess.run(
        [HOWTO, "demo", "--site-url", url, "--data-root", str(root), *STAGES],
        capture_output=True, text=True, timeout=900, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _finish_times(root: DataRoot, dataset: str) -> dict[int, float]:
    return {m.shard: m.finished_at for m in list_markers(root, dataset)}


def _rows(root: DataRoot, dataset: str, video_id: str) -> list[dict[str, object]]:
    table = read_dataset(root, dataset).to_table(filter=pc.field("video_id") == video_id)
    return table.to_pylist()


@pytest.fixture(scope="module")
def picks(demo_world: World) -> tuple[list[str], str, list[str]]:
    """Two usable videos to fail with 503, one to keep, and the rest cut short (dropped by captions).

    Dropping most videos by their captions keeps the features work to three videos on 2 cores.
    """
    visual = {a.title for a in demo_world.visual_tasks()}
    usable = [v.id for v in demo_world.usable if v.task in visual]
    assert len(usable) >= 4
    failing, kept = usable[:2], usable[2]
    others = [v.id for v in demo_world.videos if v.id not in (*failing, kept)]
    return failing, kept, others


@pytest.mark.slow
def test_retried_videos_shard_reaches_captions_clips_and_features(
    tmp_path: Path, picks: tuple[list[str], str, list[str]], prefect_api: str
) -> None:
    failing, kept, others = picks
    env = pipeline_env(tmp_path / "prefect-home", prefect_api)  # both runs on one server
    data = tmp_path / "data"
    root = DataRoot.from_any(data)
    port = _free_port()
    few = f"few_words={','.join(others)}"
    with _serve(port, [f"server_error={','.join(failing)}", few]) as url:
        _demo(url, data, env)
    for vid in failing:
        (row,) = _rows(root, "videos", vid)
        assert row["status"] == "error" and "503" in str(row["error"])
        assert _rows(root, "clips", vid) == [] and _rows(root, "frame_features", vid) == []
    kept_features = _rows(root, "frame_features", kept)
    assert kept_features and {r["status"] for r in kept_features} == {"ok"}
    tasks_before = _finish_times(root, "tasks")
    search_before = _finish_times(root, "search_results")

    with _serve(port, [few]) as url:  # the same port: the site URL is part of the tasks config
        _demo(url, data, env)

    for vid in failing:
        (row,) = _rows(root, "videos", vid)
        assert row["status"] == "ok" and row["keep"], row
        assert _rows(root, "clips", vid), f"{vid}: recovered video got no clips"
        features = _rows(root, "frame_features", vid)
        assert features and {r["status"] for r in features} == {"ok"}, f"{vid}: no features"
    # Unchanged shards were not recomputed; the changed features shard redid only the recovered videos.
    assert _finish_times(root, "tasks") == tasks_before
    assert _finish_times(root, "search_results") == search_before
    assert _rows(root, "frame_features", kept) == kept_features
    marker = read_marker(root, "frame_features", 0)
    assert marker is not None
    assert marker.extra["videos_extracted"] == 2 and marker.extra["videos_reused"] == 1
