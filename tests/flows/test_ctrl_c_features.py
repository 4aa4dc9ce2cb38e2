"""Ctrl-C or SIGTERM during the features stage: the video whose ffmpeg the signal ended is no failed attempt.

A terminal's Ctrl-C sends SIGINT to the whole foreground process group, and a cancelled Prefect run (or a
scheduler's stop, or `kill -- -PGID`) sends SIGTERM to it, the ffmpeg decoding a video included. That decode
used to be recorded as a corrupt download ("ffmpeg exited with 255 (download 1 of 3, retried next run)"), so
three stops gave a healthy video up for good; under SIGTERM the shard was even written with that error row,
and the process died without a line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL

from flows.cli_errors import EXIT_INTERRUPTED, EXIT_TERMINATED
from flows.extract_features import extract_features
from storage.layout import DataRoot
from storage.shards import read_marker, read_shard
from tasks.features.config import ExtractFeaturesConfig
from tests.flows.downloads import root_with_downloaded_videos
from tests.pipeline.crash_helpers import PipelineProcess, pipeline_env

SHORT, LONG = "shortvid001", "longvideo02"
SMALL = {"short_side_2d": 64, "size_3d": 32, "batch_2d": 4, "batch_3d": 4, "decode_workers": 1}
CFG = ExtractFeaturesConfig(random_weights=True, **SMALL)  # type: ignore[arg-type]
SETS = [f"features.{k}={v}" for k, v in {"random_weights": "true", **SMALL}.items()]


@pytest.fixture()
def root(tmp_path: Path) -> DataRoot:
    """SHORT then LONG, downloaded already: LONG decodes for long enough (its ffmpeg blocks on the pipes
    while the encoders work) to be cut by the signal. At 30 s it decoded in 3 s on an idle AVX2 machine, and
    once the signal came as its ffmpeg wrote the last frames: the run finished and exited 0."""
    return root_with_downloaded_videos(tmp_path, {SHORT: 2, LONG: 60})


def _decoding(pgid: int, video: str) -> bool:
    """True while an ffmpeg of the process group decodes `video` (the frame pipes, not ffprobe)."""
    out = subprocess.run(["ps", "-ww", "-eo", "pgid=,args="], capture_output=True, text=True).stdout
    return any(
        line.split(None, 1)[0] == str(pgid)
        and "ffmpeg" in line
        and "-filter_complex" in line
        and video in line
        for line in out.splitlines()
    )


def _wait_until_decoding(run: PipelineProcess, video: str) -> None:
    deadline = time.monotonic() + 300
    while not _decoding(run.proc.pid, video):
        assert run.proc.poll() is None and time.monotonic() < deadline, "the features run never decoded LONG"
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("signum", "code", "line"),
    [
        (signal.SIGINT, EXIT_INTERRUPTED, "error: interrupted; finished shards are kept"),
        (signal.SIGTERM, EXIT_TERMINATED, "error: stopped by SIGTERM; finished shards are kept"),
    ],
    ids=["ctrl-c", "sigterm"],
)
def test_a_stop_signal_mid_decode_is_no_failed_attempt_and_the_rerun_decodes_it_afresh(
    root: DataRoot, tmp_path: Path, signum: int, code: int, line: str
) -> None:
    args = ["--stage", "features", "--data-root", root.url, *(a for s in SETS for a in ("--set", s))]
    env = pipeline_env(tmp_path / "prefect-home", PREFECT_API_URL.value())
    run = PipelineProcess(args, env, tmp_path / "run.log")
    try:
        _wait_until_decoding(run, LONG)
        os.killpg(run.proc.pid, signum)  # to the whole group, ffmpeg included
        assert run.wait(timeout=300) == code
    finally:
        if run.proc.poll() is None:
            run.kill_group()
    log = (tmp_path / "run.log").read_text()
    assert line in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    # Nothing recorded against LONG: no decode attempt counted, no shard with an error row, no parked part.
    work = Path(root.path("_work", "frame_features"))
    attempts = [json.loads(p.read_text()) for p in work.glob("*/decode_attempts.json")]
    assert all(LONG not in counts for counts in attempts), attempts
    assert read_marker(root, "frame_features", 0) is None
    parts = {p.stem for p in work.glob("*/*.parquet")}
    assert parts == {SHORT}  # finished before the signal: kept, so the rerun does not decode it again
    assert Path(root.path("_work", "videos", f"{LONG}.mp4")).exists()  # the download is kept too
    # The rerun decodes LONG as a fresh attempt: ok, with no attempt counted.
    summary = extract_features(CFG, root.url)
    assert summary["errors"] == 0
    table = read_shard(root, "frame_features", 0)
    assert table is not None
    statuses = dict(
        zip(table.column("video_id").to_pylist(), table.column("status").to_pylist(), strict=True)
    )
    assert statuses == {SHORT: "ok", LONG: "ok"}
    marker = read_marker(root, "frame_features", 0)
    assert marker is not None and marker.extra["videos_extracted"] == 1  # LONG only


def test_ctrl_c_stops_the_shard_after_the_video_in_hand_when_no_child_was_cut(
    root: DataRoot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process decoding (PyAV) has no child for the terminal's SIGINT to end: the shard used to run on to
    its last video. Now the video in hand is parked and the next one is not begun."""
    from tasks import interrupts
    from tasks.features import stage

    monkeypatch.setattr(interrupts, "_seen", threading.Event())  # this test's own Ctrl-C, gone after it
    progress = stage.advance

    def ctrl_c_after_the_first_video(label: str, done: int, total: int) -> None:
        progress(label, done, total)
        interrupts._seen.set()  # what watch_sigint's handler does on the terminal's SIGINT

    monkeypatch.setattr(stage, "advance", ctrl_c_after_the_first_video)
    with pytest.raises(KeyboardInterrupt, match="Ctrl-C after 1 of 2 videos"):
        extract_features(CFG.model_copy(update={"decoder": "pyav"}), root.url)
    work = Path(root.path("_work", "frame_features"))
    assert {p.stem for p in work.glob("*/*.parquet")} == {SHORT}  # parked; LONG never begun
    assert read_marker(root, "frame_features", 0) is None
    assert all(not json.loads(p.read_text()) for p in work.glob("*/decode_attempts.json"))
