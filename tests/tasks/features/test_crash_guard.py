"""The guard against files that crash or hang the in-process decoder: the in-flight list, and the child's
verdict.

A file that really crashes FFmpeg's libraries is not something to ship: `crash_on_name` makes PyAV's open
kill its own process with SIGSEGV in child processes for one file name, the way a decoder bug would (the
child is a real `python -m tasks.features.crash_guard`, decoding a real video otherwise). A file that hangs
them is a FIFO nobody writes: PyAV's open blocks inside the libraries, as on a stalled mount.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from storage.layout import DataRoot
from tasks.features import crash_guard
from tasks.features.crash_guard import CheckRequest, DecodeGuard, InFlight, check_in_child
from tasks.features.decode import SPEC_2D, SPEC_3D
from tests.tasks.features.features_media import crash_on_name


def _request(path: Path, timeout_base_s: float = 30.0) -> CheckRequest:
    small = {
        "resnet152": replace(SPEC_2D, short_side=32),
        "resnext101": replace(SPEC_3D, short_side=32, crop=32),
    }
    return CheckRequest(str(path), small, timeout_base_s=timeout_base_s, timeout_per_video_s=0.5)


@pytest.fixture
def hanging(tmp_path: Path) -> Iterator[Path]:
    """A video file whose open never returns (a FIFO no one writes)."""
    fifo = tmp_path / "hangvid.mp4"
    os.mkfifo(fifo)
    yield fifo
    try:  # let an open still waiting in this process return (an empty file), so that its thread ends
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass  # no reader (ENXIO): nothing is inside open


def _processes_naming(text: str) -> list[int]:
    """Live processes whose command line holds `text`."""
    found = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            if text.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            continue  # ended meanwhile
    return found


def test_the_child_names_a_crash_and_nothing_else(
    media: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crash_on_name(tmp_path, monkeypatch)
    crashing = tmp_path / "crashvid.mp4"
    crashing.write_bytes(media["smooth"].read_bytes())
    said = check_in_child(_request(crashing))
    assert said is not None and said.status == "failed" and not said.hangs
    assert "(SIGSEGV)" in said.error and "child process" in said.error
    assert check_in_child(_request(media["smooth"])) is None  # decodes: no verdict
    # A damaged file is an error the in-process decode records as usual (a failed row after its retries),
    # not a crash: the child ends on its own.
    assert check_in_child(_request(media["corrupt"])) is None
    assert check_in_child(_request(media["truncated"])) is None


def test_a_file_that_hangs_the_child_past_its_budget_is_an_error_verdict(hanging: Path) -> None:
    said = check_in_child(_request(hanging, timeout_base_s=0.5))
    assert said is not None and said.status == "error" and said.hangs
    assert "hung" in said.error and "past its time budget" in said.error and "retried" in said.error
    assert _processes_naming(str(hanging)) == []  # the child exited, its stuck thread with it


def test_a_child_that_never_answers_is_killed_with_everything_it_started(
    media: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A child stuck before its own budget starts (here in its start-up) is the parent's to end.
    hook = tmp_path / "stuck-hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text("import time\ntime.sleep(3600)\n")
    monkeypatch.setenv("PYTHONPATH", str(hook))
    monkeypatch.setattr(crash_guard, "_SLACK_S", 1.0)
    video = tmp_path / "stuck-video.mp4"
    video.write_bytes(media["smooth"].read_bytes())
    said = check_in_child(_request(video, timeout_base_s=0.5))
    assert said is not None and said.hangs and "killed" in said.error
    assert _processes_naming(str(video)) == []


def test_the_request_reaches_the_child_intact() -> None:
    request = _request(Path("/videos/a b.mp4"))
    assert CheckRequest.from_json(request.to_json()) == request


def test_in_flight_ids_outlive_a_run_until_settled(tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path / "data")
    work = root.path("_work", "frame_features", "part-00000-h")
    root.makedirs(work)
    run = InFlight(root, work)
    assert run.suspects == set()
    for vid in ("a", "b", "c"):
        run.start(vid)
    run.settle("a")
    # The run dies here: the next one finds b and c.
    nxt = InFlight(root, work)
    assert nxt.suspects == {"b", "c"}
    nxt.keep_only({"b", "d"})  # c is no longer this run's (done, or dropped upstream)
    assert InFlight(root, work).suspects == {"b"}
    # A suspect not reached yet is passed on: still there for a third run.
    nxt.start("d")
    assert InFlight(root, work).suspects == {"b", "d"}
    nxt.start("b")  # reached, and in flight again
    nxt.settle("b")
    nxt.settle("d")
    assert InFlight(root, work).suspects == set()
    assert json.loads(Path(work, "in_flight.json").read_text()) == []


def test_a_list_cut_short_is_read_as_empty(tmp_path: Path) -> None:
    root = DataRoot.from_any(tmp_path / "data")
    work = root.path("_work", "frame_features", "part-00000-h")
    root.makedirs(work)
    Path(work, "in_flight.json").write_text('["a", "b')
    assert InFlight(root, work).suspects == set()


def test_only_a_suspect_is_checked_and_a_crashed_one_stays_until_its_row(
    media: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crash_on_name(tmp_path, monkeypatch)
    root = DataRoot.from_any(tmp_path / "data")
    work = root.path("_work", "frame_features", "part-00000-h")
    root.makedirs(work)
    Path(work, "in_flight.json").write_text(json.dumps(["crashvid001", "innocent001"]))
    crashing = tmp_path / "crashvid.mp4"
    crashing.write_bytes(media["smooth"].read_bytes())
    checked: list[str] = []

    def request(path: str) -> CheckRequest:
        checked.append(Path(path).name)
        return _request(Path(path))

    guard = DecodeGuard(InFlight(root, work), request)
    assert guard.admit("innocent001", str(media["smooth"])) is None
    assert guard.admit("fresh000001", str(crashing)) is None  # not a suspect: no child, no check
    said = guard.admit("crashvid001", str(crashing))
    assert said is not None and said.status == "failed" and "SIGSEGV" in said.error
    assert checked == ["smooth.mp4", "crashvid.mp4"]
    # Until its failed row is written, the crashed video stays on the list (a run dying now passes it on).
    assert InFlight(root, work).suspects == {"crashvid001", "innocent001", "fresh000001"}
    for vid in ("crashvid001", "innocent001", "fresh000001"):
        guard.finish(vid, abandoned=False)
    assert InFlight(root, work).suspects == set()


def test_a_video_abandoned_past_its_budget_is_checked_in_a_child_until_it_decodes(
    media: dict[str, Path], hanging: Path, tmp_path: Path
) -> None:
    root = DataRoot.from_any(tmp_path / "data")
    work = root.path("_work", "frame_features", "part-00000-h")
    root.makedirs(work)
    file = {"hangvid0001": hanging}

    def guard() -> DecodeGuard:  # one run's guard
        return DecodeGuard(InFlight(root, work), lambda path: _request(Path(path), timeout_base_s=0.5))

    first = guard()
    assert first.admit("hangvid0001", str(file["hangvid0001"])) is None  # not a suspect: in process
    assert first.admit("goodvid0001", str(media["smooth"])) is None
    first.finish("hangvid0001", abandoned=True)  # its in-process decode was given up: error row
    first.finish("goodvid0001", abandoned=False)
    assert InFlight(root, work).suspects == {"hangvid0001"}
    # Its retry is checked in a child, which hangs too: an error row again, and it stays a suspect.
    second = guard()
    said = second.admit("hangvid0001", str(file["hangvid0001"]))
    assert said is not None and said.hangs
    second.finish("hangvid0001", abandoned=said.hangs)
    assert InFlight(root, work).suspects == {"hangvid0001"}
    # The file is fine by the next run (the mount came back): the child decodes it, then the worker does.
    file["hangvid0001"] = media["smooth"]
    third = guard()
    assert third.admit("hangvid0001", str(file["hangvid0001"])) is None
    third.finish("hangvid0001", abandoned=False)
    assert InFlight(root, work).suspects == set()


@pytest.mark.parametrize(
    ("decoder", "guarded"), [("pyav", True), ("pyav-gpu", True), ("pyav-child", False), ("ffmpeg", False)]
)
def test_decoders_in_the_workers_process_are_guarded(tmp_path: Path, decoder: str, guarded: bool) -> None:
    """PyAV in process, frames on the CPU or kept on the GPU: a file that crashes its libraries takes the
    worker down, so the stage keeps the in-flight list; a decoder in a process of its own crashes alone."""
    from types import SimpleNamespace

    from tasks.features.extractor import ExtractorSettings
    from tasks.features.stage import _crash_guard

    extractor = SimpleNamespace(settings=ExtractorSettings(decoder=decoder), specs={})
    guard = _crash_guard(DataRoot(str(tmp_path)), "work", extractor, [])  # type: ignore[arg-type]
    assert (guard is not None) == guarded
