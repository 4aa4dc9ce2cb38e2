"""PyAV in a child process per video ("pyav-child"): decode_av's frames, with the command line's isolation.

Many PyAV decoders in one process share its interpreter lock: measured on a 16-core Xeon (H200 host),
sixteen decoding threads gave 131x real time where sixteen processes gave 245x, and the compute loop that
feeds the GPU queues behind the same lock. So where a GPU is fed by many decoders and no ffmpeg executable
is installed, each probe and decode runs in a child (`python -m tasks.features.decode_child`), which writes
each output's frames as packed RGB to a pipe of its own, as ffmpeg does; the readers and the watchdog are
the command line's (tasks/features/decode.py). As with ffmpeg, a file that crashes the libraries ends only
its child (a failed row, no crash guard needed), and one that hangs them is killed at its budget, its core
freed, where an in-process decode can only be abandoned.

The child ends with one result line on stdout: which decoder ran, and the error it raised, if any.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from tasks.features.decode import (
    DecodeError,
    DecodeReport,
    DecodeTimeout,
    HardwareDecodeFailed,
    StreamSpec,
    VideoInfo,
    Watchdog,
    read_output,
)

RESULT = "howto-decode-result "
_ERRORS: dict[str, type[Exception]] = {
    "DecodeError": DecodeError,
    "DecodeTimeout": DecodeTimeout,
    "HardwareDecodeFailed": HardwareDecodeFailed,
}
# The child's own budget is the parent's plus this: the parent's watchdog, which kills, acts first.
_CHILD_SLACK_S = 30.0
_PIPE_BYTES = 1 << 20  # fewer, larger writes per chunk (a 3D chunk is 2.4 MB); Linux's F_SETPIPE_SZ
_F_SETPIPE_SZ = 1031


def _spawn(request: dict[str, Any], pass_fds: list[int]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tasks.features.decode_child", json.dumps(request)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        pass_fds=pass_fds, start_new_session=True,
    )  # fmt: skip


def _collect(proc: subprocess.Popen[bytes], lines: list[bytes]) -> threading.Thread:
    """Read the child's output (its result line, and whatever the libraries or Python printed) as it comes,
    so the child never blocks on a full pipe."""
    assert proc.stdout is not None
    stdout = proc.stdout
    thread = threading.Thread(target=lambda: lines.extend(stdout), daemon=True)
    thread.start()
    return thread


def _result(lines: list[bytes], returncode: int) -> dict[str, Any]:
    """The child's result line, or a DecodeError made of its last words when it died before writing one (a
    crash inside the libraries: the file's fault, as an ffmpeg that crashes on it)."""
    for raw in reversed(lines):
        line = raw.decode(errors="replace")
        if line.startswith(RESULT):
            return dict(json.loads(line[len(RESULT) :]))
    tail = " | ".join(x.decode(errors="replace").strip() for x in lines[-3:] if x.strip())
    if returncode < 0:
        try:
            how = f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            how = f"killed by signal {-returncode}"
    else:
        how = f"exited with {returncode}"
    return {"error": ["DecodeError", f"PyAV's decoder process {how}" + (f": {tail}" if tail else "")]}


def _raise_for(result: dict[str, Any]) -> None:
    if result.get("error"):
        kind, message = result["error"]
        raise _ERRORS.get(kind, DecodeError)(message)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def probe(path: str, timeout_s: float = 30.0) -> VideoInfo:
    """decode_av.probe in a child: DecodeError in FFmpeg's words, DecodeTimeout (the child killed) past
    `timeout_s`."""
    proc = _spawn({"probe": path, "timeout_s": timeout_s + _CHILD_SLACK_S}, [])
    lines: list[bytes] = []
    reader = _collect(proc, lines)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill(proc)
        raise DecodeTimeout(f"probe killed after {timeout_s:.0f} s (timeout)") from None
    finally:
        _kill(proc)
        reader.join(timeout=5)
    result = _result(lines, proc.returncode)
    _raise_for(result)
    return VideoInfo(**result["info"])


def stream_outputs(
    path: str,
    specs: Mapping[str, StreamSpec],
    info: VideoInfo,
    timeout_s: float,
    threads: int = 1,
    hwaccel: str | None = None,
    report: DecodeReport | None = None,
) -> Iterator[tuple[str, np.ndarray]]:
    """decode_av.stream_outputs in a child: the same (key, uint8 (n, H, W, 3) chunk)s and errors. The child
    is killed once we have waited `timeout_s` in total for its frames (DecodeTimeout)."""
    pipes = {key: os.pipe() for key in specs}
    for _, w in pipes.values():
        with contextlib.suppress(OSError):
            fcntl.fcntl(w, _F_SETPIPE_SZ, _PIPE_BYTES)
    request = {
        "decode": path,
        "specs": {k: dataclasses.asdict(s) for k, s in specs.items()},
        "info": dataclasses.asdict(info),
        "timeout_s": timeout_s + _CHILD_SLACK_S,
        "threads": threads,
        "hwaccel": hwaccel,
        "fds": {k: w for k, (_, w) in pipes.items()},
    }
    try:
        proc = _spawn(request, [w for _, w in pipes.values()])
    except BaseException:
        for r, _ in pipes.values():
            os.close(r)
        raise
    finally:
        for _, w in pipes.values():
            os.close(w)  # the child holds the write ends now: its exit is our end of file
    lines: list[bytes] = []
    collector = _collect(proc, lines)
    box: queue.Queue[Any] = queue.Queue(maxsize=len(specs))
    stop = threading.Event()
    readers = [
        threading.Thread(
            target=read_output,
            args=(os.fdopen(r, "rb"), key, specs[key].frame_shape(info), specs[key].chunk, box, stop),
            daemon=True,
        )
        for key, (r, _) in pipes.items()
    ]
    for reader in readers:
        reader.start()
    watchdog = Watchdog(proc, timeout_s)
    running = set(specs)
    try:
        while running:
            with watchdog:
                key, chunk = box.get()
            if chunk is None:
                running.discard(key)
                continue
            yield key, chunk
        with watchdog:  # its outputs closed, the child still writes its result line: wait for it
            proc.wait()
    finally:
        stop.set()  # readers blocked on a full box give up; the child's death ends their reads
        watchdog.close()
        _kill(proc)  # a consumer that stopped early, or an error on our side
        for reader in readers:
            reader.join(timeout=5)
        collector.join(timeout=5)
    if watchdog.fired:
        raise DecodeTimeout(f"decode killed after {timeout_s:.0f} s (timeout)")
    result = _result(lines, proc.returncode)
    if report is not None and "decoder" in result:
        report.decoder, report.fallback = result["decoder"], result["fallback"]
    _raise_for(result)


# -- the child's side ----------------------------------------------------------------------------------


def _child_probe(request: dict[str, Any]) -> dict[str, Any]:
    from tasks.features import decode_av

    info = decode_av.probe(request["probe"], request["timeout_s"])
    return {"info": dataclasses.asdict(info)}


def _child_decode(request: dict[str, Any]) -> dict[str, Any]:
    from tasks.features import decode_av

    specs = {k: StreamSpec(**s) for k, s in request["specs"].items()}
    outputs = {k: os.fdopen(fd, "wb", buffering=0) for k, fd in request["fds"].items()}
    report = DecodeReport()
    try:
        for key, chunk in decode_av.stream_outputs(
            request["decode"],
            specs,
            VideoInfo(**request["info"]),
            request["timeout_s"],
            request["threads"],
            request["hwaccel"],
            report,
        ):
            outputs[key].write(np.ascontiguousarray(chunk).data)
    finally:
        for handle in outputs.values():
            with contextlib.suppress(OSError):  # the parent gone: nothing to tell it
                handle.close()
    return {"decoder": report.decoder, "fallback": report.fallback}


def child_main(argv: list[str]) -> int:
    request = json.loads(argv[0])
    try:
        result = _child_probe(request) if "probe" in request else _child_decode(request)
        code = 0
    except (DecodeError, DecodeTimeout, HardwareDecodeFailed) as exc:
        result, code = {"error": [type(exc).__name__, str(exc)]}, 1
    except BrokenPipeError:  # the parent stopped reading (it gave up on the video): nothing to report
        return 1
    print(RESULT + json.dumps(result), flush=True)
    return code


if __name__ == "__main__":
    # A decode thread stuck in the libraries past its budget must not keep the child alive at exit.
    os._exit(child_main(sys.argv[1:]))
