"""Which decoded frames FFmpeg's `fps` filter outputs, and how often: its rule as plain arithmetic, for the
decoder that keeps frames on the GPU (tasks/features/decode_device.py), where no filter graph touches them.

The rule (libavfilter's fps filter, eof_action=round): every input time stamp is rescaled to the output
time base 1/fps with the filter's rounding; the first output slot is the first frame's rescaled time, or,
with a start time (the decoders give start_time=0), that time's slot. A frame fills the slots from the next
free one up to, not including, the next frame's rescaled time (none when that is not later: the frame is
dropped); at the end the last frame fills the slots up to the rescaled end of the stream (its time plus its
duration). Checked against the filter itself on constant, variable and offset time stamps, with and without
a start time (tests/tasks/features/test_fps_pick.py).
"""

from __future__ import annotations

from fractions import Fraction

ROUNDINGS = ("near", "up", "down", "zero", "inf")


def rescale(pts: int, time_base: Fraction, fps: Fraction, rounding: str) -> int:
    """`pts` in `time_base` as a count of 1/fps slots, rounded as av_rescale_q_rnd rounds (`near`: half
    away from zero; `inf`: away from zero; `zero`: toward zero)."""
    return _rounded(
        pts * time_base.numerator * fps.numerator, time_base.denominator * fps.denominator, rounding
    )


def _rounded(num: int, den: int, rounding: str) -> int:
    """num / den (den > 0) rounded, in integers: this runs once per decoded frame and output."""
    if rounding == "down":
        return num // den
    if rounding == "up":
        return -(-num // den)
    if rounding == "zero":
        return num // den if num >= 0 else -(-num // den)
    if rounding == "inf":
        return -(-num // den) if num >= 0 else num // den
    if rounding == "near":
        return (2 * num + den) // (2 * den) if num >= 0 else -((-2 * num + den) // (2 * den))
    raise ValueError(f"unknown fps rounding {rounding!r}: one of {', '.join(ROUNDINGS)}")


class FpsPicker:
    """Feed the frames' time stamps in decode order; each call says how many output frames the *previous*
    frame makes (0: dropped). `end` says it for the last frame."""

    def __init__(
        self,
        fps: float | Fraction,
        time_base: Fraction,
        rounding: str = "near",
        start_time: int | None = None,
    ) -> None:
        if rounding not in ROUNDINGS:
            raise ValueError(f"unknown fps rounding {rounding!r}: one of {', '.join(ROUNDINGS)}")
        self.fps = Fraction(fps).limit_denominator(1_000_000)
        self.time_base, self.rounding = time_base, rounding
        # The filter's start_time option (whole seconds here: the decoders give 0): the first output slot.
        start = None if start_time is None else start_time * self.fps
        self.start_slot = None if start is None else _rounded(start.numerator, start.denominator, rounding)
        # pts * time_base * fps as one integer fraction, so each frame costs two integer products.
        self._num = time_base.numerator * self.fps.numerator
        self._den = time_base.denominator * self.fps.denominator
        self.next_slot: int | None = None  # the next output slot to fill
        self.last_end: int | None = None  # the previous frame's pts + duration, in time_base
        self.emitted = 0

    def _slot(self, pts: int) -> int:
        return _rounded(pts * self._num, self._den, self.rounding)

    def push(self, pts: int, duration: int = 0) -> int:
        """Frame at `pts` (in time_base) arrives: the previous frame's count of outputs."""
        slot = self._slot(pts)
        self.last_end = pts + max(duration, 0)
        if self.next_slot is None:  # the first frame: its slot (or the start time's) is where output starts
            self.next_slot = slot if self.start_slot is None else self.start_slot
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
