"""Which decoded frames FFmpeg's `fps` filter outputs, and how often: its rule as plain arithmetic, for the
decoder that keeps frames on the GPU (tasks/features/decode_device.py), where no filter graph touches them.

The rule (libavfilter's fps filter, default options: no start time, eof_action=round): every input time
stamp is rescaled to the output time base 1/fps with the filter's rounding; the first frame's rescaled time
is the first output slot. A frame fills the slots from the next free one up to, not including, the next
frame's rescaled time (none when that is not later: the frame is dropped); at the end the last frame fills
the slots up to the rescaled end of the stream (its time plus its duration). Checked against the filter
itself on constant, variable and offset time stamps (tests/tasks/features/test_fps_pick.py).
"""

from __future__ import annotations

from fractions import Fraction

ROUNDINGS = ("near", "up", "down", "zero", "inf")


def rescale(pts: int, time_base: Fraction, fps: Fraction, rounding: str) -> int:
    """`pts` in `time_base` as a count of 1/fps slots, rounded as av_rescale_q_rnd rounds (`near`: half
    away from zero; `inf`: away from zero; `zero`: toward zero)."""
    exact = Fraction(pts) * time_base * fps
    floor, ceil = exact.numerator // exact.denominator, -(-exact.numerator // exact.denominator)
    if rounding == "down":
        return floor
    if rounding == "up":
        return ceil
    if rounding == "zero":
        return floor if exact >= 0 else ceil
    if rounding == "inf":
        return ceil if exact >= 0 else floor
    if rounding == "near":
        twice = 2 * exact
        half_up = (twice.numerator + twice.denominator) // (2 * twice.denominator)  # floor(x + 1/2)
        return half_up if exact >= 0 or exact - floor != Fraction(1, 2) else floor
    raise ValueError(f"unknown fps rounding {rounding!r}: one of {', '.join(ROUNDINGS)}")


class FpsPicker:
    """Feed the frames' time stamps in decode order; each call says how many output frames the *previous*
    frame makes (0: dropped). `end` says it for the last frame."""

    def __init__(self, fps: float | Fraction, time_base: Fraction, rounding: str = "near") -> None:
        if rounding not in ROUNDINGS:
            raise ValueError(f"unknown fps rounding {rounding!r}: one of {', '.join(ROUNDINGS)}")
        self.fps = Fraction(fps).limit_denominator(1_000_000)
        self.time_base, self.rounding = time_base, rounding
        self.next_slot: int | None = None  # the next output slot to fill
        self.last_end: int | None = None  # the previous frame's pts + duration, in time_base
        self.emitted = 0

    def _slot(self, pts: int) -> int:
        return rescale(pts, self.time_base, self.fps, self.rounding)

    def push(self, pts: int, duration: int = 0) -> int:
        """Frame at `pts` (in time_base) arrives: the previous frame's count of outputs."""
        slot = self._slot(pts)
        self.last_end = pts + max(duration, 0)
        if self.next_slot is None:  # the first frame: its slot is where the output starts
            self.next_slot = slot
            return 0
        return self._fill(slot)

    def end(self) -> int:
        """The stream ended: the last frame's count of outputs (0 when no frame came)."""
        if self.next_slot is None or self.last_end is None:
            return 0
        return self._fill(self._slot(self.last_end))

    def _fill(self, upto: int) -> int:
        assert self.next_slot is not None
        count = max(0, upto - self.next_slot)
        self.next_slot += count
        self.emitted += count
        return count
