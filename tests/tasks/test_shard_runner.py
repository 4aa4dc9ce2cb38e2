"""The shard contract as the runner owns it, on real Parquet files and markers."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import pyarrow as pa
import pytest

from storage import shard_lock
from storage.atomic import TMP_PREFIX
from storage.layout import DataRoot
from storage.shards import read_dataset, read_marker, read_shard, write_shard
from tasks import interrupts
from tasks.shard_runner import (
    SecondaryOutput,
    ShardInput,
    ShardJob,
    ShardOutput,
    UpstreamMissing,
    run_job,
)
from tests.storage.test_shards import clips_table

VIDEOS = (ShardInput("clips", "fetch_captions"),)


def _upstream(root: DataRoot, ids: list[str]) -> None:
    """Write the input shard under one fixed config hash, as a retry run of the same config would."""
    write_shard(
        root, "clips", 0, clips_table(ids), config_hash="same-config", code_version="t", rows_in=len(ids)
    )


class Counting:
    """A compute function that copies the upstream rows and records what it was handed."""

    def __init__(self, root: DataRoot) -> None:
        self.root, self.calls, self.previous = root, 0, []

    def __call__(self, previous: pa.Table | None) -> ShardOutput:
        self.calls += 1
        self.previous.append(previous)
        table = read_shard(self.root, "clips", 0)
        assert table is not None
        return ShardOutput(table, rows_in=table.num_rows)


def _job(compute: Counting, own: str = "own-1") -> ShardJob:
    return ShardJob("clip_pairs_test", 0, own, compute, inputs=VIDEOS, reusable=lambda t: t)


@pytest.fixture()
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DataRoot:
    # A test dataset with the clips schema, so the runner's writes validate.
    from storage import schemas

    monkeypatch.setitem(schemas.SCHEMAS, "clip_pairs_test", schemas.SCHEMAS["clips"])
    return DataRoot.from_any(tmp_path)


def test_missing_input_says_which_stage_to_run(root: DataRoot) -> None:
    with pytest.raises(UpstreamMissing, match="clips shard 0 is not finished: run fetch_captions first"):
        run_job(root, _job(Counting(root)))


def test_rewritten_input_with_the_same_config_reruns_downstream(root: DataRoot) -> None:
    """The data-loss bug: a retried upstream shard (same config hash, new rows) must reach downstream."""
    _upstream(root, ["a" * 11])
    compute = Counting(root)
    assert run_job(root, _job(compute))["cached"] is False
    assert run_job(root, _job(compute))["cached"] is True and compute.calls == 1
    _upstream(root, ["a" * 11, "b" * 11])  # a retry recovered a video
    manifest = run_job(root, _job(compute))
    assert manifest["cached"] is False and manifest["rows_out"] == 2 and compute.calls == 2
    marker = read_marker(root, "clip_pairs_test", 0)
    assert marker is not None and set(marker.inputs) == {"clips"} and marker.own_hash == "own-1"


def test_earlier_rows_are_reused_only_under_the_same_own_config(root: DataRoot) -> None:
    _upstream(root, ["a" * 11])
    compute = Counting(root)
    run_job(root, _job(compute))
    _upstream(root, ["a" * 11, "b" * 11])
    run_job(root, _job(compute))
    assert compute.previous[0] is None and compute.previous[1] is not None
    assert compute.previous[1].num_rows == 1
    run_job(root, _job(compute, own="own-2"))  # our own config changed: nothing is reused
    assert compute.previous[2] is None


def test_secondary_is_written_before_the_primary_and_checked_on_skip(root: DataRoot) -> None:
    _upstream(root, ["a" * 11])

    def compute(_previous: pa.Table | None) -> ShardOutput:
        table = clips_table(["a" * 11, "c" * 11])
        return ShardOutput(table, 2, secondary=[SecondaryOutput("clip_pairs_test", table, 2)])

    job = ShardJob("clips", 1, "own", compute, secondaries=("clip_pairs_test",))
    first = run_job(root, job)
    assert first["clip_pairs_test"] == 2
    secondary, primary = read_marker(root, "clip_pairs_test", 1), read_marker(root, "clips", 1)
    assert secondary is not None and primary is not None
    assert secondary.finished_at <= primary.finished_at and secondary.config_hash == primary.config_hash
    assert run_job(root, job)["cached"] is True
    # The secondary file truncated under its marker: the whole shard is redone, not reported cached.
    path = Path(root.shard_path("clip_pairs_test", 1, 1))
    path.write_bytes(path.read_bytes()[:100])
    assert run_job(root, job)["cached"] is False
    assert read_dataset(root, "clip_pairs_test").count_rows() == 2


def test_crash_between_rename_and_marker_is_redone(root: DataRoot, caplog: pytest.LogCaptureFixture) -> None:
    _upstream(root, ["a" * 11])
    compute = Counting(root)
    run_job(root, _job(compute))
    os.remove(root.marker_path("clip_pairs_test", 1, 0))  # the state a kill after the rename leaves
    assert read_dataset(root, "clip_pairs_test").count_rows() == 0  # the unmarked file is invisible
    caplog.clear()
    assert run_job(root, _job(compute))["cached"] is False and compute.calls == 2
    # ... and the rerun says why it redoes the shard, naming the file.
    said = [r.getMessage() for r in caplog.records if "no marker vouches" in r.getMessage()]
    assert len(said) == 1 and root.shard_path("clip_pairs_test", 1, 0) in said[0]
    caplog.clear()
    run_job(root, _job(compute))  # marked again: nothing to say
    assert not [r for r in caplog.records if "no marker vouches" in r.getMessage()]


def test_own_leftover_temp_files_are_removed_others_kept(root: DataRoot) -> None:
    _upstream(root, ["a" * 11])
    directory = Path(root.dataset_dir("clip_pairs_test", 1))
    directory.mkdir(parents=True)
    ours = directory / f"{TMP_PREFIX}dead-part-00000.parquet"
    theirs = directory / f"{TMP_PREFIX}live-part-00003.parquet"  # another shard, maybe writing now
    ours.write_bytes(b"half")
    theirs.write_bytes(b"half")
    run_job(root, _job(Counting(root)))
    assert not ours.exists() and theirs.exists()


def test_a_stop_signal_ends_the_wait_for_a_shard_another_run_writes(
    root: DataRoot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C or SIGTERM while a run waits for a shard another run holds: the wait ends, nothing is computed."""
    _upstream(root, ["a" * 11])
    monkeypatch.setattr(interrupts, "_seen", threading.Event())
    waiting = threading.Event()
    monkeypatch.setattr(shard_lock, "on_wait_hook", lambda path: waiting.set())
    path = Path(shard_lock.lock_path(root, "clip_pairs_test", 0))
    path.parent.mkdir(parents=True)
    compute = Counting(root)
    raised: list[BaseException] = []

    def run() -> None:
        try:
            run_job(root, _job(compute))
        except BaseException as exc:  # noqa: BLE001 - checked by the test
            raised.append(exc)

    with path.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # the other run, writing the shard
        waiter = threading.Thread(target=run)
        waiter.start()
        try:
            assert waiting.wait(60)
            interrupts._seen.set()  # what the CLI's handler does on the signal
            waiter.join(60)
            assert not waiter.is_alive()  # a blocked flock kept the run until the other's shard was done
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)
            waiter.join(60)
    assert len(raised) == 1 and isinstance(raised[0], interrupts.ItemInterrupted)
    assert "clip_pairs_test shard 0 left to the run writing it" in str(raised[0])
    assert compute.calls == 0 and read_marker(root, "clip_pairs_test", 0) is None
