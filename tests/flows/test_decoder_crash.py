"""A file that crashes the in-process decoder (PyAV) takes its worker down once, not forever: the rerun
decodes the videos that were in flight in a child first, gives the crashing one a failed row, and finishes
the shard with the others' features.

A real `howto pipeline --stage features` with a sitecustomize on PYTHONPATH that makes PyAV's open SIGSEGV
its process for one file (see features_media.crash_hook); the rerun is the flow in this process, with the
hook on its children's PYTHONPATH only, so only a decode that reaches the file in a child can crash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from flows.extract_features import extract_features
from storage.shards import read_shard, write_shard
from tasks.features.config import ExtractFeaturesConfig
from tests.cpu import worker_threads
from tests.flows.downloads import root_with_downloads
from tests.flows.test_extract_features import _table
from tests.tasks.features.features_media import crash_hook, encode_frames, index_frames

HOWTO = str(Path(sys.executable).with_name("howto"))
CRASHING, FINE = "crashvid001", "finevideo01"
# Both runs: PyAV, small inputs (the real architectures stay cheap on 2 cores), one video at a time.
FIELDS: dict[str, object] = {
    "random_weights": True, "decoder": "pyav", "short_side_2d": 32, "size_3d": 32, "decode_workers": 1
}  # fmt: skip


def test_a_file_that_crashes_pyav_fails_alone_on_the_rerun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.settings import PREFECT_API_URL

    root, videos = root_with_downloads(tmp_path)
    for vid in (CRASHING, FINE):
        encode_frames(videos / f"{vid}.mp4", index_frames(50), "25")  # 2 s each, already downloaded
    rows = [
        {"video_id": v, "url": None, "keep": True, "status": "ok", "crawl_id": "c0"} for v in (CRASHING, FINE)
    ]
    write_shard(root, "videos", 0, _table("videos", rows), config_hash="v", code_version="t", rows_in=2)
    hook = crash_hook(tmp_path / "hook")
    api = str(PREFECT_API_URL.value())
    env = {
        **os.environ,
        "PYTHONPATH": str(hook),
        "PREFECT_API_URL": api,
        "OMP_NUM_THREADS": str(worker_threads()),
    }
    command = [HOWTO, "pipeline", "--stage", "features", "--data-root", root.url]
    for field, value in FIELDS.items():
        command += ["--set", f"features.{field}={json.dumps(value)}"]

    crashed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert crashed.returncode == -11, crashed.stderr[-3000:]  # SIGSEGV: the worker went down with it
    assert read_shard(root, "frame_features", 0) is None
    work = next(Path(root.path("_work", "frame_features")).iterdir())
    assert CRASHING in json.loads((work / "in_flight.json").read_text())

    monkeypatch.setenv("PYTHONPATH", str(hook))
    extract_features(ExtractFeaturesConfig(**FIELDS), root.url)  # type: ignore[arg-type]
    table = read_shard(root, "frame_features", 0)
    assert table is not None
    status = dict(zip(table.column("video_id").to_pylist(), table.column("status").to_pylist(), strict=False))
    assert status == {CRASHING: "failed", FINE: "ok"}
    failed = table.filter(pa.compute.equal(table.column("video_id"), CRASHING)).column("error").to_pylist()
    assert "crashed on this file (SIGSEGV)" in failed[0]
    fine = table.filter(pa.compute.equal(table.column("video_id"), FINE))
    assert sorted(set(fine.column("model").to_pylist())) == ["resnet152", "resnext101"]
    assert not work.exists()  # the shard is done: its parts and in-flight list are gone
