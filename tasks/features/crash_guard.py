"""In-process decoding (PyAV) survives a file that crashes FFmpeg's libraries.

The command-line decoder runs in a process of its own: a file that crashes it is a failed exit, so one
video gets a failed row. PyAV decodes inside the worker, so the same file takes the whole worker down, and
a rerun that decodes it again crashes again: the shard would never finish. So, with PyAV, the stage keeps
in the shard's work folder the ids of the videos handed to the decoder and not finished yet. A run that
finds ids left there by a run that died first decodes each of those files in a child process. A child
killed by a signal names a file that crashes the decoder: that video gets a failed row. The others were
innocent (queued beside it, or the run was stopped or preempted) and go on as usual. Nothing is charged on
a guess: a preempted run costs its successor one extra decode per video it had in flight, never a video.

A file that hangs the libraries (a decoder looping inside one packet, a stalled mount) is the other case
only a process can end: past its budget the in-process decode is abandoned, but its thread cannot be
stopped and keeps its core. So a video abandoned in process stays on the list with its error row; every
later try decodes it in a child first, and a child past the same budget is killed: the video gets an error
row again (retried next run, as a timeout is) and never reaches the in-process decoder while it hangs.
One stuck thread per such file, once, instead of one per run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from storage.atomic import atomic_write_bytes, read_json_or_none
from storage.layout import DataRoot
from tasks.features.decode import DecodeError, DecodeTimeout, StreamSpec, decode_outputs, probe_with

_FILE = "in_flight.json"
# The child's own exit status for a file it could not decode: the in-process decode finds the same error
# and records it as usual (a damaged file is not a crash).
EXIT_DECODE_ERROR = 3
# ... and for a probe or decode abandoned past its budget: the file hangs the libraries.
EXIT_TIMEOUT = 4
# Past the decode's own budget (probe, then decode): a child still going is killed, the file hangs.
_SLACK_S = 30.0


@dataclass(frozen=True)
class Verdict:
    """What a suspect's check in a child found: the row its video gets instead of an in-process decode."""

    status: str  # "failed": the file crashes the decoder; "error": it hangs it (retried, again in a child)
    error: str

    @property
    def hangs(self) -> bool:
        return self.status == "error"


class InFlight:
    """The set of videos handed to the in-process decoder and not finished, kept in `work`/in_flight.json.

    `suspects` are the ids a previous run left there (it died with them in flight). They stay in the file
    until each has been checked or started again, so a run that dies before reaching them passes them on.
    """

    def __init__(self, root: DataRoot, work: str) -> None:
        self.root, self.path = root, f"{work}/{_FILE}"
        self.suspects: set[str] = _read(root, self.path)
        self._open: set[str] = set()
        self._lock = threading.Lock()  # downloads (the extractor's feeder thread) start, the stage finishes

    def start(self, video_id: str) -> None:
        """`video_id` goes to the decoder now (its probe included)."""
        with self._lock:
            self.suspects.discard(video_id)
            self._open.add(video_id)
            self._save()

    def settle(self, video_id: str) -> None:
        """`video_id` is done with the decoder (a result, or a verdict from its check). A video kept
        (abandoned in process, or hung in its check) is simply never settled: it stays in the file."""
        with self._lock:
            if video_id in self._open or video_id in self.suspects:
                self._open.discard(video_id)
                self.suspects.discard(video_id)
                self._save()

    def keep_only(self, video_ids: set[str]) -> None:
        """Forget suspects this run will not hand out (done earlier, or no longer kept upstream)."""
        with self._lock:
            if self.suspects - video_ids:
                self.suspects &= video_ids
                self._save()

    def _save(self) -> None:
        ids = sorted(self.suspects | self._open)
        atomic_write_bytes(self.root, self.path, json.dumps(ids).encode())


def _read(root: DataRoot, path: str) -> set[str]:
    data = read_json_or_none(root, path)  # a file cut short: its ids go unchecked, as before the guard
    return {str(v) for v in data} if isinstance(data, list) else set()


@dataclass(frozen=True)
class CheckRequest:
    """What the child decodes: the extractor's recipes, time budget and hardware decoder, for one file."""

    path: str
    specs: Mapping[str, StreamSpec]
    timeout_base_s: float
    timeout_per_video_s: float
    hwaccel: str | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))  # asdict turns the specs into dicts too

    @staticmethod
    def from_json(text: str) -> CheckRequest:
        data = json.loads(text)
        specs = {m: StreamSpec(**s) for m, s in data.pop("specs").items()}
        return CheckRequest(specs=specs, **data)


@dataclass
class DecodeGuard:
    """The stage's side of the guard: which videos may go to the in-process decoder, and when they leave."""

    in_flight: InFlight
    request: Callable[[str], CheckRequest]  # a downloaded file's path -> what the child decodes

    def admit(self, video_id: str, path: str) -> Verdict | None:
        """None when `video_id` may go to the decoder (it is in flight from now on); the verdict when it is
        a suspect whose file crashed or hung a child. The video then stays a suspect until its row is
        written (`finish`), so a run that dies before that checks it again rather than crashing on it."""
        if video_id in self.in_flight.suspects and (verdict := check_in_child(self.request(path))):
            return verdict
        self.in_flight.start(video_id)
        return None

    def finish(self, video_id: str, abandoned: bool) -> None:
        """`video_id`'s row is written. One whose decode was `abandoned` past its budget (in process, or
        its check in a child) stays on the list, so that every retry of it is checked in a child first."""
        if not abandoned:
            self.in_flight.settle(video_id)


def check_in_child(request: CheckRequest) -> Verdict | None:
    """Decode the file through PyAV in a child process. A failed verdict when a signal killed the child
    (the file crashes the decoder), an error one when its probe or decode ran past the budget (the file
    hangs it; a child still going after that is killed), else None: decoded, or a file error the in-process
    decode will record as usual."""
    command = [sys.executable, "-m", "tasks.features.crash_guard", request.to_json()]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        # The parent does not probe the file itself (the probe may be what crashes): the child says the
        # duration it probed, which sets the decode's budget; an empty line is a child that ended early.
        line = _first_line(proc, request.timeout_base_s + _SLACK_S)
        duration_s = float(line) if line.strip() else 0.0
        proc.wait(timeout=request.timeout_base_s + request.timeout_per_video_s * duration_s + _SLACK_S)
    except subprocess.TimeoutExpired as exc:
        _kill(proc)
        return _hung(f"no end after {exc.timeout:.0f} s, killed")
    except ValueError:  # a line that is not a duration: not the child's protocol, no verdict
        _kill(proc)
        return None
    finally:
        if proc.stdout is not None:
            proc.stdout.close()
    if proc.returncode == EXIT_TIMEOUT:
        return _hung("past its time budget")
    if proc.returncode >= 0:
        return None
    try:
        name = signal.Signals(-proc.returncode).name
    except ValueError:
        name = f"signal {-proc.returncode}"
    return Verdict(
        "failed",
        f"the PyAV decoder crashed on this file ({name}) when it was decoded again in a child process",
    )


def _hung(how: str) -> Verdict:
    return Verdict(
        "error",
        f"the PyAV decoder hung on this file when it was decoded again in a child process ({how}); "
        "retried next run, in a child again",
    )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)  # its own session: nothing of it outlives the check
    proc.wait()


def _first_line(proc: subprocess.Popen[bytes], timeout_s: float) -> bytes:
    box: queue.Queue[bytes] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: box.put(stdout.readline()), daemon=True).start()
    try:
        return box.get(timeout=timeout_s)
    except queue.Empty:
        raise subprocess.TimeoutExpired(proc.args, timeout_s) from None


def _decode(request: CheckRequest) -> int:
    try:
        info = probe_with("pyav", request.path, timeout_s=request.timeout_base_s)
        print(info.duration_s, flush=True)
        timeout = request.timeout_base_s + request.timeout_per_video_s * info.duration_s
        for _ in decode_outputs(request.path, request.specs, info, timeout, request.hwaccel, decoder="pyav"):
            pass
    except DecodeTimeout:
        return EXIT_TIMEOUT
    except DecodeError:
        return EXIT_DECODE_ERROR
    return 0


if __name__ == "__main__":
    code = _decode(CheckRequest.from_json(sys.argv[1]))
    sys.stdout.flush()
    # A decode thread stuck in the libraries past its budget must not keep the child alive at exit.
    os._exit(code)
