"""Ctrl-C and SIGTERM as the per-item work sees them: a child cut by a stop signal is not a failed item.

A terminal's Ctrl-C sends SIGINT to the whole foreground process group; a cancelled Prefect flow run gets
SIGTERM on its whole process group (the runner's `killpg`), and so does a job that systemd, Slurm or a shell's
`kill -- -PGID` stops. The ffmpeg and ffprobe children die of it at once (they trap both and exit 255; a
child that does not trap them dies of the signal), while this process learns of it in the main thread only,
not in the shard task's thread that reads the child's exit. That thread used to take the exit for a broken
file: the video in hand became a failed decode attempt ("1 of 3", given up for good after three stops) and,
under SIGTERM, its error row was even written into a finished shard. Such an item now raises ItemInterrupted
instead: nothing is recorded for it, its shard is not written, and the rerun does it again as a fresh attempt.

Under Prefect's flow engine SIGTERM is Prefect's (it raises TerminationSignal in the main thread), so the
flow side notes it where the main thread waits for the shard tasks (flows/runtime.py calls note_stop).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

# fftools exit with 255 once they have received a signal (`received_nb_signals ? 255 : ret`). Other errors
# can end in 255 too (a bare -1 from a library call), so it counts as a stop only if this process got one.
FFMPEG_SIGNAL_EXIT = 255
# A child dies of the same signal as this process: when the task thread reads its exit first, it waits this
# long for the main thread (where this process's handler runs) to note the signal. Paid only by an exit 255
# that was no stop, a rare genuine error.
HANDLER_GRACE_S = 2.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_seen = threading.Event()  # a stop signal of either kind
_terminated = threading.Event()  # ... and it was SIGTERM: the messages say so, the CLI exits 143


class ItemInterrupted(KeyboardInterrupt):
    """A stop signal (the user's Ctrl-C, or SIGTERM) cut the work on one item. A KeyboardInterrupt: no
    per-item handler (they catch Exception) records it as a failure, Prefect ends the task as crashed without
    retrying it, and the CLI reports it as an interrupt (exit 130, or 143 after SIGTERM)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM ended the command: raised by watch_stop_signals' handler, so that the work unwinds as after
    Ctrl-C (files closed, no per-item failure recorded) and the CLI prints one line before exiting 143."""


def note_stop(signum: int) -> None:
    """Record that this process got the stop signal `signum`: the shard tasks stop after the item in hand."""
    if signum == signal.SIGTERM:
        _terminated.set()
    _seen.set()


def _raise_terminated(signum: int, frame: FrameType | None) -> Any:
    raise Terminated("SIGTERM")


def watch_stop_signals() -> None:
    """Note each SIGINT and SIGTERM of this process. SIGINT's handler then runs as before (KeyboardInterrupt
    by default); SIGTERM, left to the system until now (death on the spot, no line), raises Terminated.

    Only the main thread may install a handler; elsewhere, and where a signal is ignored or left to the
    system by someone else, this does nothing for it (a child that died of the signal still counts).
    Calling it again is harmless."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in STOP_SIGNALS:
        previous = signal.getsignal(signum)
        if getattr(previous, "notes_stop", False):
            continue
        if signum == signal.SIGTERM and previous == signal.SIG_DFL:
            previous = _raise_terminated
        if not callable(previous):
            continue

        def note_then_pass_on(sig: int, frame: FrameType | None, previous: Any = previous) -> Any:
            note_stop(sig)
            return previous(sig, frame)

        note_then_pass_on.notes_stop = True  # type: ignore[attr-defined]
        signal.signal(signum, note_then_pass_on)


def interrupt_seen() -> bool:
    """True once this process got a stop signal (SIGINT with watch_stop_signals installed, or one noted)."""
    return _seen.is_set()


def terminated() -> bool:
    """True once this process got a SIGTERM (noted): the CLI then exits 143 rather than 130."""
    return _terminated.is_set()


def stop_name() -> str:
    """What stopped this process, as the messages say it."""
    return "SIGTERM" if terminated() else "Ctrl-C"


def refuse_after_stop(what: str) -> None:
    """Raise ItemInterrupted (`<stop>: <what>`) once a stop signal was seen: a client makes no new request
    after it, so a shard stops at once instead of asking a site for every item left at the polite rate."""
    if interrupt_seen():
        raise ItemInterrupted(f"{stop_name()}: {what}")


def cut_by_interrupt(returncode: int | None) -> bool:
    """True when a child's exit says a stop signal ended it: it died of SIGINT or SIGTERM, or it exited 255
    (the fftools' exit on a signal) while this process got a stop signal too."""
    if returncode is not None and -returncode in STOP_SIGNALS:
        return True
    return returncode == FFMPEG_SIGNAL_EXIT and _seen.wait(HANDLER_GRACE_S)


def check_child(returncode: int | None, what: str) -> None:
    """Raise ItemInterrupted when the child `what` was ended by a stop signal (see cut_by_interrupt)."""
    if cut_by_interrupt(returncode):
        raise ItemInterrupted(f"{what} was stopped by {stop_name()} (exit {returncode})")
