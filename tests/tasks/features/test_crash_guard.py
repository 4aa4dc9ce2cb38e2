"""The guard against files that crash the in-process decoder: the in-flight list, and the child's verdict.

A file that really crashes FFmpeg's libraries is not something to ship: `crash_on_name` makes PyAV's open
kill its own process with SIGSEGV in child processes for one file name, the way a decoder bug would (the
child is a real `python -m tasks.features.crash_guard`, decoding a real video otherwise).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from storage.layout import DataRoot
from tasks.features.crash_guard import CheckRequest, DecodeGuard, InFlight, crash_in_child
from tasks.features.decode import SPEC_2D, SPEC_3D
from tests.tasks.features.features_media import crash_on_name


def _request(path: Path) -> CheckRequest:
    small = {
        "resnet152": replace(SPEC_2D, short_side=32),
        "resnext101": replace(SPEC_3D, short_side=32, crop=32),
    }
    return CheckRequest(str(path), small, timeout_base_s=30.0, timeout_per_video_s=0.5)


def test_the_child_names_a_crash_and_nothing_else(
    media: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crash_on_name(tmp_path, monkeypatch)
    crashing = tmp_path / "crashvid.mp4"
    crashing.write_bytes(media["smooth"].read_bytes())
    said = crash_in_child(_request(crashing))
    assert said is not None and "(SIGSEGV)" in said and "child process" in said
    assert crash_in_child(_request(media["smooth"])) is None  # decodes: no verdict
    # A damaged file is an error the in-process decode records as usual (a failed row after its retries),
    # not a crash: the child ends on its own.
    assert crash_in_child(_request(media["corrupt"])) is None
    assert crash_in_child(_request(media["truncated"])) is None


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
    assert said is not None and "SIGSEGV" in said
    assert checked == ["smooth.mp4", "crashvid.mp4"]
    # Until its failed row is written, the crashed video stays on the list (a run dying now passes it on).
    assert InFlight(root, work).suspects == {"crashvid001", "innocent001", "fresh000001"}
    for vid in ("crashvid001", "innocent001", "fresh000001"):
        guard.settle(vid)
    assert InFlight(root, work).suspects == set()
