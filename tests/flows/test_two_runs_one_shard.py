"""Two runs of the features stage on one local data root (two workers, a triggered run beside a scheduled
one) that reach the same shard: the shard is extracted once, and no video of it is lost."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from storage import shard_lock
from storage.layout import DataRoot
from storage.shards import read_marker, read_shard
from tasks.features import stage
from tasks.features.stage import features_shard
from tasks.youtube.access import YoutubeAccess
from tests.flows.downloads import root_with_downloaded_videos
from tests.flows.test_extract_features import CFG

FIRST, SECOND = "firstvideo1", "secondvide2"
# A bound on each hand-over between the two runs, so a broken run fails the test instead of hanging it.
HANDOVER_S = 120.0


def test_a_run_reaching_a_shard_another_is_writing_waits_and_finds_it_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = root_with_downloaded_videos(tmp_path, {FIRST: 2, SECOND: 2})
    first_parked, second_waits, second_done = threading.Event(), threading.Event(), threading.Event()
    finish = stage._finish

    def pausing_finish(root_: DataRoot, work: str, result: Any, *args: Any, **kwargs: Any) -> None:
        finish(root_, work, result, *args, **kwargs)
        if threading.current_thread().name == "run-a" and result.video_id == FIRST:
            # Run A has parked its first video; run B starts the shard now. Before the lock, B took A's part,
            # extracted the rest, wrote the shard and removed the parts: A then wrote it again without FIRST.
            first_parked.set()
            for _ in range(int(HANDOVER_S * 10)):
                if second_waits.wait(0.1) or second_done.is_set():
                    break

    monkeypatch.setattr(stage, "_finish", pausing_finish)
    monkeypatch.setattr(shard_lock, "on_wait_hook", lambda path: second_waits.set())
    task = features_shard.with_options(retries=0)
    manifests: dict[str, dict[str, Any]] = {}
    failures: list[BaseException] = []

    def run(name: str) -> None:
        try:
            manifests[name] = task(root.url, 0, CFG, YoutubeAccess())
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)
        finally:
            if name == "run-b":
                second_done.set()

    run_a = threading.Thread(target=run, args=("run-a",), name="run-a")
    run_a.start()
    try:
        assert first_parked.wait(HANDOVER_S), "run A never parked its first video"
        run_b = threading.Thread(target=run, args=("run-b",), name="run-b")
        run_b.start()
        run_b.join(HANDOVER_S * 3)
    finally:
        run_a.join(HANDOVER_S * 3)
    assert not failures, failures
    table = read_shard(root, "frame_features", 0)
    assert table is not None
    ok = table.filter(pa.compute.equal(table.column("status"), "ok"))
    assert set(ok.column("video_id").to_pylist()) == {FIRST, SECOND}
    marker = read_marker(root, "frame_features", 0)
    assert marker is not None and marker.extra["videos_extracted"] == 2 and marker.errors == 0
    # B waited for A's shard instead of doing it too, and found it done.
    assert second_waits.is_set()
    assert manifests["run-a"]["cached"] is False and manifests["run-b"]["cached"] is True
