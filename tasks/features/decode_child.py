"""PyAV in child processes ("pyav-child"): decode_av's frames, with the command line's isolation.

Many PyAV decoders in one process share its interpreter lock: measured on a 16-core Xeon (H200 host),
sixteen decoding threads gave 131x real time where sixteen processes gave 245x, and the compute loop that
feeds the GPU queues behind the same lock. So where a GPU is fed by many decoders and no ffmpeg executable
is installed, probes and decodes run in child processes (`python -m tasks.features.decode_child`). Each
decode's outputs come over pipes of their own as packed RGB, as ffmpeg's do, and the readers and the
watchdog are the command line's (tasks/features/decode.py). As with ffmpeg, a file that crashes the
libraries ends only its child (a failed row, no crash guard needed), and one that hangs them is killed at
its budget, its core freed, where an in-process decode can only be abandoned.

A child serves one request at a time and many in its life: it is started once and kept while its
requests end cleanly, so a video pays no Python start (about 0.2 s, plus the planar checks' decodes, which
the parent hands over). Requests go over a Unix socket with the output pipes' write ends attached
(SCM_RIGHTS); the child closes them when its decode ends (our end of file) and answers with one message:
the probe's result, or which decoder ran and the error raised, if any. A child that was killed, crashed,
was stopped before the end of a decode or abandoned one inside is never used again. A child whose parent
is gone reads the end of its socket and exits.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import fcntl
import json
import os
import signal
import socket
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
    start_readers,
)

_ERRORS: dict[str, type[Exception]] = {
    "DecodeError": DecodeError,
    "DecodeTimeout": DecodeTimeout,
    "HardwareDecodeFailed": HardwareDecodeFailed,
}
# The child's own budget is the parent's plus this: the parent's watchdog, which kills, acts first.
_CHILD_SLACK_S = 30.0
_PIPE_BYTES = 1 << 20  # fewer, larger writes per chunk (a 3D chunk is 2.4 MB); Linux's F_SETPIPE_SZ
_F_SETPIPE_SZ = 1031
_MESSAGE_BYTES = 1 << 20  # a request or an answer is a few hundred bytes


class _Child:
    """One long-lived decoding process, the socket it takes requests on, and its last printed lines (the
    libraries' or Python's words, for a child that dies)."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tasks.features.decode_child", str(theirs.fileno())],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                pass_fds=[theirs.fileno()], start_new_session=True,
            )  # fmt: skip
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.sock = ours
        with _lock:
            _live[self.proc.pid] = self
        self.last_lines: collections.deque[bytes] = collections.deque(maxlen=20)
        assert self.proc.stdout is not None
        stdout = self.proc.stdout
        threading.Thread(target=lambda: self.last_lines.extend(stdout), daemon=True).start()

    def ask(self, request: Mapping[str, Any], fds: list[int] | None = None) -> None:
        """Send a request; to a child that has died (idle, or just now) it goes nowhere, and `answer` then
        says so."""
        with contextlib.suppress(OSError):  # BrokenPipeError, ConnectionResetError: the peer is gone
            socket.send_fds(self.sock, [json.dumps(request).encode()], fds or [])

    def answer(self) -> dict[str, Any] | None:
        """The child's answer to the last request; None when it died first."""
        try:
            data = self.sock.recv(_MESSAGE_BYTES)
        except OSError:
            return None
        return dict(json.loads(data)) if data else None

    def end(self) -> None:
        """Kill it (its own session: nothing of it outlives this) and reap it."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.sock.close()
        with _lock:
            _live.pop(self.proc.pid, None)

    def died(self) -> str:
        """DecodeError's words for a child that ended without answering: a crash inside the libraries is the
        file's fault, as with an ffmpeg that crashes on it."""
        self.end()
        code = self.proc.returncode
        if code < 0:
            try:
                how = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"killed by signal {-code}"
        else:
            how = f"exited with {code}"
        tail = " | ".join(x.decode(errors="replace").strip() for x in list(self.last_lines)[-3:] if x.strip())
        return f"PyAV's decoder process {how}" + (f": {tail}" if tail else "")


_idle: list[_Child] = []
_live: dict[int, _Child] = {}  # every child not yet ended, busy or idle, by process id
_lock = threading.Lock()


def _take(fresh: bool = False) -> tuple[_Child, bool]:
    """An idle child, or a new one (always with `fresh`); and whether it is one that served before. One
    that served before and dies on its next request may have died idle (killed for memory, say): that
    request goes once more to a new child, so only a file that kills a new child is charged."""
    with _lock:
        while _idle and not fresh:
            child = _idle.pop()
            if child.proc.poll() is None:
                return child, True
            child.end()
    return _Child(), False


def _give_back(child: _Child) -> None:
    with _lock:
        _idle.append(child)


def children() -> list[int]:
    """The process ids of the idle children (what a test can watch)."""
    with _lock:
        return [c.proc.pid for c in _idle]


def live_cpu_seconds() -> float:
    """CPU seconds used so far by the children still running (an ended child's are in this process's
    RUSAGE_CHILDREN, since it was waited for): with both, a bench counts the decoders' work."""
    with _lock:
        pids = list(_live)
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
                fields = handle.read().rpartition(")")[2].split()
        except OSError:
            continue  # ended meanwhile (counted as a waited child) or no /proc
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime: fields 14 and 15 of stat(5)
    return total


def stop_children() -> None:
    """End every idle child now (they also end on their own when this process exits)."""
    with _lock:
        ending, _idle[:] = list(_idle), []
    for child in ending:
        child.end()


def _raise_for(result: Mapping[str, Any]) -> None:
    if result.get("error"):
        kind, message = result["error"]
        raise _ERRORS.get(kind, DecodeError)(message)


def probe(path: str, timeout_s: float = 30.0, fresh: bool = False) -> VideoInfo:
    """decode_av.probe in a child: DecodeError in FFmpeg's words, DecodeTimeout (the child killed) past
    `timeout_s`."""
    child, reused = _take(fresh)
    watchdog = Watchdog(child.proc, timeout_s)
    try:
        child.ask({"probe": path, "timeout_s": timeout_s + _CHILD_SLACK_S})
        with watchdog:
            result = child.answer()
    except BaseException:
        child.end()
        raise
    finally:
        watchdog.close()
    if watchdog.fired:
        child.end()
        raise DecodeTimeout(f"probe killed after {timeout_s:.0f} s (timeout)")
    if result is None:
        words = child.died()
        if reused:
            return probe(path, timeout_s, fresh=True)
        raise DecodeError(words)
    _keep_or_end(child, result)
    _raise_for(result)
    return VideoInfo(**result["info"])


def _keep_or_end(child: _Child, result: Mapping[str, Any]) -> None:
    if result.get("retire"):  # it abandoned a decode inside: a thread of it may still be stuck there
        child.end()
    else:
        _give_back(child)


def stream_outputs(
    path: str,
    specs: Mapping[str, StreamSpec],
    info: VideoInfo,
    timeout_s: float,
    threads: int = 1,
    hwaccel: str | None = None,
    report: DecodeReport | None = None,
    fresh: bool = False,
) -> Iterator[tuple[str, np.ndarray]]:
    """decode_av.stream_outputs in a child: the same (key, uint8 (n, H, W, 3) chunk)s and errors. The child
    is killed once we have waited `timeout_s` in total for its frames (DecodeTimeout)."""
    from tasks.features import decode_av

    planar = decode_av.planar_verdicts()  # checked once in this process, not once per child
    child, reused = _take(fresh)
    pipes = {key: os.pipe() for key in specs}
    try:
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
            "outputs": list(pipes),
            "planar": planar,
        }
        child.ask(request, [w for _, w in pipes.values()])
    except BaseException:
        for r, _ in pipes.values():
            os.close(r)
        child.end()
        raise
    finally:
        for _, w in pipes.values():
            os.close(w)  # the child holds the write ends now: its closing them is our end of file
    box, stop, readers = start_readers({key: r for key, (r, _) in pipes.items()}, specs, info)
    watchdog = Watchdog(child.proc, timeout_s)
    running = set(specs)
    result: dict[str, Any] | None = None
    yielded = False
    try:
        while running:
            with watchdog:
                key, chunk = box.get()
            if chunk is None:
                running.discard(key)
                continue
            yielded = True
            yield key, chunk
        with watchdog:  # its outputs closed, the child still sends its answer
            result = child.answer()
    finally:
        stop.set()  # readers blocked on a full box give up; the child's death ends their reads
        watchdog.close()
        if result is None or watchdog.fired:
            child.end()  # stopped early (the consumer left, or an error here), killed or dead: not reused
        for reader in readers:
            reader.join(timeout=5)
    if watchdog.fired:
        raise DecodeTimeout(f"decode killed after {timeout_s:.0f} s (timeout)")
    if result is None:
        words = child.died()
        if reused and not yielded:
            yield from stream_outputs(path, specs, info, timeout_s, threads, hwaccel, report, fresh=True)
            return
        raise DecodeError(words)
    _keep_or_end(child, result)
    if report is not None and "decoder" in result:
        report.decoder, report.fallback = result["decoder"], result["fallback"]
    _raise_for(result)


# -- the child's side ----------------------------------------------------------------------------------


def _child_probe(request: Mapping[str, Any]) -> dict[str, Any]:
    from tasks.features import decode_av

    info = decode_av.probe(request["probe"], request["timeout_s"])
    return {"info": dataclasses.asdict(info)}


def _child_decode(request: Mapping[str, Any], fds: list[int]) -> dict[str, Any]:
    from tasks.features import decode_av

    decode_av.adopt_planar_verdicts(request["planar"])
    specs = {k: StreamSpec(**s) for k, s in request["specs"].items()}
    outputs = {k: os.fdopen(fd, "wb", buffering=0) for k, fd in zip(request["outputs"], fds, strict=True)}
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


def _serve(request: Mapping[str, Any], fds: list[int]) -> dict[str, Any]:
    """One request's answer; "retire" when a decode was abandoned inside (its thread may be stuck)."""
    try:
        return _child_probe(request) if "probe" in request else _child_decode(request, fds)
    except DecodeTimeout as exc:
        return {"error": [type(exc).__name__, str(exc)], "retire": True}
    except (DecodeError, HardwareDecodeFailed) as exc:
        return {"error": [type(exc).__name__, str(exc)]}


def child_main(fd: int) -> int:
    sock = socket.socket(fileno=fd)
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(sock, _MESSAGE_BYTES, 8)
        except OSError:
            return 0
        if not message:
            return 0  # the parent is gone
        try:
            answer = _serve(json.loads(message), fds)
        except BrokenPipeError:  # the parent stopped reading (it gave up on the video): it ends us
            return 1
        sock.send(json.dumps(answer).encode())
        if answer.get("retire"):
            return 1


if __name__ == "__main__":
    # A decode thread stuck in the libraries past its budget must not keep the child alive at exit.
    os._exit(child_main(int(sys.argv[1])))
