"""PyAV in a child process per video ("pyav-child"): the in-process decoder's frames and errors, a file that
crashes the libraries fails its video alone, and one that hangs them is killed at its budget."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import numpy as np
import pytest
from features_media import crash_on_name, decoded_outputs, encode_frames, index_frames, read_index

from tasks.features import decode_child
from tasks.features.decode import (
    SPEC_2D,
    SPEC_3D,
    DecodeError,
    DecodeReport,
    DecodeTimeout,
    VideoInfo,
    decode_outputs,
    probe_with,
)
from tasks.features.decoder_choice import for_the_stage

BOTH = {"2d": SPEC_2D, "3d": SPEC_3D}


_outputs = decoded_outputs


@pytest.mark.parametrize("name", ["smooth", "index25", "index2997"])
def test_the_child_gives_the_in_process_decoders_probe_and_frames(media: dict[str, Path], name: str) -> None:
    path = media[name]
    assert probe_with("pyav-child", str(path)) == probe_with("pyav", str(path))
    report = DecodeReport(decoder="unset")
    child, inside = _outputs(path, "pyav-child", report), _outputs(path, "pyav")
    assert report.decoder == "cpu" and report.fallback is None
    for key in BOTH:
        assert child[key].shape == inside[key].shape and child[key].flags.writeable, key
        assert np.array_equal(child[key], inside[key]), key


def test_every_frame_comes_through_the_pipe_in_order(tmp_path: Path) -> None:
    """Chunks of 16 and a short last one: every frame once, in order, none torn across a pipe read."""
    path = encode_frames(tmp_path / "index24.mp4", index_frames(40), "24")
    info = probe_with("pyav-child", str(path))
    spec = SPEC_3D.__class__(fps=24.0, short_side=240, chunk=16)
    chunks = [c for _, c in decode_child.stream_outputs(str(path), {"f": spec}, info, 60)]
    assert [len(c) for c in chunks] == [16, 16, 8]
    assert [read_index(f) for f in np.concatenate(chunks)] == list(range(40))


def test_a_damaged_file_is_the_in_process_decoders_error(media: dict[str, Path]) -> None:
    with pytest.raises(DecodeError, match="Invalid data|moov atom"):
        probe_with("pyav-child", str(media["corrupt"]))
    path = str(media["truncated"])
    with pytest.raises(DecodeError) as caught:
        list(decode_outputs(path, BOTH, probe_with("pyav-child", path), 60, decoder="pyav-child"))
    with pytest.raises(DecodeError) as inside:
        list(decode_outputs(path, BOTH, probe_with("pyav", path), 60, decoder="pyav"))
    assert str(caught.value) == str(inside.value)


def test_a_file_that_crashes_the_libraries_fails_its_video_alone(
    media: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decode_child.stop_children()  # the hook below reaches children started from now on
    crash_on_name(tmp_path, monkeypatch)  # PyAV's open SIGSEGVs its process for *crashvid* files
    crashing = tmp_path / "crashvid.mp4"
    crashing.write_bytes(media["smooth"].read_bytes())
    with pytest.raises(DecodeError, match="PyAV's decoder process killed by SIGSEGV"):
        probe_with("pyav-child", str(crashing))
    info = probe_with("pyav-child", str(media["smooth"]))
    with pytest.raises(DecodeError, match="killed by SIGSEGV"):
        list(decode_child.stream_outputs(str(crashing), BOTH, info, 60))
    assert len(_outputs(media["smooth"], "pyav-child")["2d"]) == 4  # this process and the next video go on
    decode_child.stop_children()  # none with the hook is left for later tests


def _has_reader(fifo: Path) -> bool:
    """Whether any process has the FIFO open for reading (a writer's non-blocking open says ENXIO if not)."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError as exc:
        assert exc.errno == errno.ENXIO
        return False
    return True


def test_a_file_that_hangs_the_libraries_is_killed_at_its_budget(tmp_path: Path) -> None:
    """Unlike an in-process decode, which can only be abandoned, the child is gone: nothing holds the file."""
    fifo = tmp_path / "never-written.mp4"
    os.mkfifo(fifo)  # opening blocks until a writer comes: a stand-in for a stalled network mount
    info = VideoInfo(width=160, height=120, duration_s=1.0)
    start = time.monotonic()
    with pytest.raises(DecodeTimeout, match="probe killed after 2 s"):
        probe_with("pyav-child", str(fifo), timeout_s=2)
    with pytest.raises(DecodeTimeout, match="decode killed after 2 s"):
        list(decode_child.stream_outputs(str(fifo), {"2d": SPEC_2D}, info, timeout_s=2))
    assert time.monotonic() - start < 20
    assert not _has_reader(fifo)


def test_a_child_serves_video_after_video_and_a_killed_one_is_replaced(media: dict[str, Path]) -> None:
    decode_child.stop_children()
    first = _outputs(media["smooth"], "pyav-child")
    (pid,) = decode_child.children()  # the probe's child decoded the video too, and waits for the next
    again = _outputs(media["index25"], "pyav-child")
    assert decode_child.children() == [pid] and len(again["3d"]) == round(260 / 25 * 24)
    os.kill(pid, 9)  # dies idle (the OOM killer, say): the next request starts another
    replaced = _outputs(media["smooth"], "pyav-child")
    assert all(np.array_equal(first[key], replaced[key]) for key in BOTH)
    assert decode_child.children() not in ([], [pid])


def test_a_reused_child_that_dies_before_its_request_passes_it_to_a_new_one(
    media: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the idle check cannot close: the child dies after it was handed out, before it answers."""
    decode_child.stop_children()
    expected = _outputs(media["smooth"], "pyav-child")
    take = decode_child._take
    killed: list[int] = []

    def take_and_kill(fresh: bool = False):  # noqa: ANN202 - stands in for decode_child._take
        child, reused = take(fresh)
        if reused:
            os.kill(child.proc.pid, 9)
            child.proc.wait()  # dead for sure before the request goes out
            killed.append(child.proc.pid)
        return child, reused

    monkeypatch.setattr(decode_child, "_take", take_and_kill)
    got = _outputs(media["smooth"], "pyav-child")
    assert len(killed) == 2  # the probe's child and the decode's
    assert all(np.array_equal(expected[key], got[key]) for key in BOTH)


def test_a_consumer_that_stops_early_ends_its_child(media: dict[str, Path]) -> None:
    """The child may be blocked writing frames nobody reads: it is ended, never handed out again."""
    decode_child.stop_children()
    path = str(media["index25"])
    info = probe_with("pyav-child", path)
    (pid,) = decode_child.children()
    chunks = decode_child.stream_outputs(path, {"3d": SPEC_3D}, info, 60)
    next(chunks)
    chunks.close()
    assert decode_child.children() == []
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def _pick(
    setting: str, wanted: str | None, hwaccel_auto: bool, on_cuda: bool, cli: bool
) -> tuple[str, str | None]:
    choice = for_the_stage(setting, wanted, hwaccel_auto, on_cuda, cli, lambda decoder: True)
    return choice.decoder, choice.hwaccel


def test_on_a_gpu_pyav_decodes_in_child_processes_and_on_the_cpu_unless_told() -> None:
    # A GPU host without ffmpeg, all auto: PyAV in children, on the CPU (measured faster than its NVDEC).
    assert _pick("auto", "cuda", True, True, cli=False) == ("pyav-child", None)
    # NVDEC asked for by name: kept; the decoder still moves out of the process.
    assert _pick("auto", "cuda", False, True, cli=False) == ("pyav-child", "cuda")
    # The command line keeps NVDEC under auto (each decode is a process of its own already).
    assert _pick("auto", "cuda", True, True, cli=True) == ("ffmpeg", "cuda")
    # A CPU worker: its two decoders stay in process; a named decoder is never swapped.
    assert _pick("auto", None, True, False, cli=False) == ("pyav", None)
    assert _pick("pyav", "cuda", True, True, cli=False) == ("pyav", None)
    assert _pick("pyav-child", None, True, False, cli=True) == ("pyav-child", None)


def test_the_bench_counts_the_cpu_of_children_that_stay_alive(media: dict[str, Path]) -> None:
    """A long-lived child is never waited for, so RUSAGE_CHILDREN misses it: without its own count the
    decoder would look many times cheaper per CPU-second than per wall-second."""
    from tasks.bench.features import decode_rate

    path = media["index25"]
    info = probe_with("pyav-child", str(path))
    assert decode_child.children()  # the probe's child stays for the decode
    per_cpu_s, per_wall_s = decode_rate(path, dict(BOTH), info, None, DecodeReport(), "pyav-child")
    assert per_cpu_s < 3 * per_wall_s, (per_cpu_s, per_wall_s)
