"""The fps filter's rule as arithmetic (tasks/features/fps_pick.py) against FFmpeg's fps filter itself (PyAV's
libavfilter): the same input frames picked, as often, for constant, variable, offset and odd time stamps."""

from __future__ import annotations

import random
from fractions import Fraction

import av
import numpy as np
import pytest

from tasks.features.fps_pick import FpsPicker, rescale


def _marked(index: int) -> av.VideoFrame:
    """A tiny frame carrying `index` in its first two pixels (gray8: exact through the filter)."""
    picture = np.zeros((2, 16), np.uint8)
    picture[0, 0], picture[0, 1] = index % 256, index // 256
    return av.VideoFrame.from_ndarray(picture, format="gray")


def filter_picks(
    stamps: list[tuple[int, int]], time_base: Fraction, fps: str, rounding: str, start_time: int | None = None
) -> list[int]:
    """The input indices FFmpeg's fps filter outputs for frames at (pts, duration), in order."""
    graph = av.filter.Graph()
    source = graph.add_buffer(width=16, height=2, format="gray", time_base=time_base)
    start = "" if start_time is None else f":start_time={start_time}"
    fps_filter = graph.add("fps", f"fps={fps}:round={rounding}{start}")
    sink = graph.add("buffersink")
    source.link_to(fps_filter)
    fps_filter.link_to(sink)
    graph.configure()
    picks: list[int] = []

    def drain() -> None:
        while True:
            try:
                out = sink.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            row = out.to_ndarray()
            picks.append(int(row[0, 0]) + 256 * int(row[0, 1]))

    for k, (pts, duration) in enumerate(stamps):
        frame = _marked(k)
        frame.pts, frame.time_base, frame.duration = pts, time_base, duration
        source.push(frame)
        drain()
    source.push(None)
    drain()
    return picks


def picker_picks(
    stamps: list[tuple[int, int]], time_base: Fraction, fps: str, rounding: str, start_time: int | None = None
) -> list[int]:
    picker = FpsPicker(Fraction(fps), time_base, rounding, start_time)
    picks: list[int] = []
    for k, (pts, duration) in enumerate(stamps):
        picks += [k - 1] * picker.push(pts, duration)
    picks += [len(stamps) - 1] * picker.end()
    return picks


def _constant(n: int, step: int, start: int = 0) -> list[tuple[int, int]]:
    return [(start + k * step, step) for k in range(n)]


def _variable(n: int, seed: int) -> list[tuple[int, int]]:
    """Irregular gaps (drops, bursts), some frames with no duration."""
    rng = random.Random(seed)
    stamps, pts = [], rng.randrange(0, 3000)
    for _ in range(n):
        gap = rng.choice([1, 2, 512, 512, 512, 1024, 1537, 3000, 7])
        stamps.append((pts, rng.choice([gap, gap, 0])))
        pts += gap
    return stamps


CASES = {
    "30 fps at 1 fps": (_constant(95, 512), Fraction(1, 15360)),
    "29.97 fps": (_constant(100, 1001), Fraction(1, 30000)),
    "25 fps, offset start": (_constant(80, 40, start=1400), Fraction(1, 1000)),
    "60 fps": (_constant(150, 256), Fraction(1, 15360)),
    "15 fps (duplicates at 24)": (_constant(40, 6000), Fraction(1, 90000)),
    "variable": (_variable(200, 1), Fraction(1, 15360)),
    "variable, other seed": (_variable(200, 7), Fraction(1, 15360)),
    "negative start": (_constant(60, 512, start=-1024), Fraction(1, 15360)),
    "one frame": ([(0, 2048)], Fraction(1, 15360)),
    "no durations": ([(k * 512, 0) for k in range(70)], Fraction(1, 15360)),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize(("fps", "rounding"), [("1", "up"), ("24", "near"), ("24000/1001", "down")])
def test_picks_the_frames_the_fps_filter_picks(case: str, fps: str, rounding: str) -> None:
    stamps, time_base = CASES[case]
    expected = filter_picks(stamps, time_base, fps, rounding)
    assert expected, "the filter output nothing: the case tests nothing"
    assert picker_picks(stamps, time_base, fps, rounding) == expected


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize(("fps", "rounding"), [("1", "up"), ("24", "near"), ("24000/1001", "down")])
def test_picks_what_the_filter_picks_from_a_start_time(case: str, fps: str, rounding: str) -> None:
    """start_time=0, as the decoders run the filter: a stream that starts late fills the slots before its
    first frame with it, one that starts early has its frames before 0 dropped."""
    stamps, time_base = CASES[case]
    expected = filter_picks(stamps, time_base, fps, rounding, start_time=0)
    assert expected, "the filter output nothing: the case tests nothing"
    assert picker_picks(stamps, time_base, fps, rounding, start_time=0) == expected


@pytest.mark.parametrize("rounding", ["zero", "inf", "near", "up", "down"])
def test_every_rounding_mode_matches_the_filter(rounding: str) -> None:
    stamps, time_base = CASES["variable"]
    assert picker_picks(stamps, time_base, "24", rounding) == filter_picks(stamps, time_base, "24", rounding)


def test_rescale_rounds_as_libavutil_does() -> None:
    third = Fraction(1, 3)
    assert [rescale(p, Fraction(1, 2), Fraction(1), "near") for p in (-3, -1, 1, 3)] == [-2, -1, 1, 2]
    assert rescale(1, third, Fraction(1), "up") == 1 and rescale(1, third, Fraction(1), "down") == 0
    assert rescale(-1, third, Fraction(1), "zero") == 0 and rescale(-1, third, Fraction(1), "inf") == -1
    with pytest.raises(ValueError, match="unknown fps rounding"):
        rescale(1, third, Fraction(1), "sideways")


def test_no_frames_means_no_output() -> None:
    assert FpsPicker(24, Fraction(1, 1000)).end() == 0
