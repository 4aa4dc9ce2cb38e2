"""Ctrl-C as the per-item work sees it: a child process cut by the user's interrupt is not a failed item.

A terminal's Ctrl-C sends SIGINT to the whole foreground process group. The ffmpeg and ffprobe children die
of it at once (ffmpeg and ffprobe trap it and exit 255; a child that does not trap it dies of the signal,
returncode -2), while this process's KeyboardInterrupt is raised in the main thread only, not in the shard
task's thread that reads the child's exit. That thread used to take the exit for a broken file: the video in
hand became a failed decode attempt ("1 of 3", given up for good after three Ctrl-Cs), its audio an
unreadable track. Such an item now raises ItemInterrupted instead: nothing is recorded for it, its shard is
not written, and the rerun does it again as a fresh attempt.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

# fftools exit with 255 once they have received a signal (`received_nb_signals ? 255 : ret`). Other errors
# can end in 255 too (a bare -1 from a library call), so it counts as Ctrl-C only if this process got one.
FFMPEG_SIGNAL_EXIT = 255
# A child dies of the same Ctrl-C as this process: when the task thread reads its exit first, it waits this
# long for this process's handler (which runs in the main thread) to note the signal. Paid only by an exit
# 255 that was no Ctrl-C, a rare genuine error.
HANDLER_GRACE_S = 2.0

_seen = threading.Event()


class ItemInterrupted(KeyboardInterrupt):
    """The user's Ctrl-C cut the work on one item. A KeyboardInterrupt: no per-item handler (they catch
    Exception) records it as a failure, Prefect ends the task as crashed without retrying it, and the CLI
    reports it as an interrupt (exit 130)."""


def watch_sigint() -> None:
    """Note each SIGINT of this process, then let its handler run as before (KeyboardInterrupt by default).

    Only the main thread may install a handler; elsewhere, and where SIGINT is ignored or left to the
    system, this does nothing (a child that died of SIGINT still counts). Calling it again is harmless."""
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous) or getattr(previous, "notes_interrupt", False):
        return

    def note_then_pass_on(signum: int, frame: FrameType | None) -> Any:
        _seen.set()
        return previous(signum, frame)

    note_then_pass_on.notes_interrupt = True  # type: ignore[attr-defined]
    signal.signal(signal.SIGINT, note_then_pass_on)


def interrupt_seen() -> bool:
    """True once this process got a SIGINT (with watch_sigint installed)."""
    return _seen.is_set()


def cut_by_interrupt(returncode: int | None) -> bool:
    """True when a child's exit says the user's Ctrl-C ended it: it died of SIGINT, or it exited 255 (the
    fftools' exit on a signal) while this process got a SIGINT too."""
    if returncode == -signal.SIGINT:
        return True
    return returncode == FFMPEG_SIGNAL_EXIT and _seen.wait(HANDLER_GRACE_S)


def check_child(returncode: int | None, what: str) -> None:
    """Raise ItemInterrupted when the child `what` was ended by the user's Ctrl-C (see cut_by_interrupt)."""
    if cut_by_interrupt(returncode):
        raise ItemInterrupted(f"{what} was stopped by Ctrl-C (exit {returncode})")
