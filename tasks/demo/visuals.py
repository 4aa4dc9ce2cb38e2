"""Step pictures: one distinct look per step (background, shape, motion) drawn with numpy."""

from __future__ import annotations

import colorsys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

WIDTH, HEIGHT, FPS = 320, 240, 24
SHAPES = ("circle", "square", "triangle", "diamond", "ring", "cross")
MOTIONS = ("sweep_x", "sweep_y", "orbit", "diagonal")
INTRO_BG = (38, 38, 42)


@dataclass(frozen=True)
class Look:
    """How one step appears on screen in every video of its task (before per-video jitter)."""

    background: tuple[int, int, int]
    shape: str
    colour: tuple[int, int, int]
    motion: str


@dataclass(frozen=True)
class Jitter:
    """Small per-video variation so the same step looks alike but never identical."""

    dcolour: tuple[int, int, int]
    scale: float
    dx: int
    dy: int
    speed: float
    phase: float


def _rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (round(r * 255), round(g * 255), round(b * 255))


def assign_looks(task_step_counts: list[int], seed: int) -> list[list[Look]]:
    """Give every step of every task a look unique worldwide, with distinct backgrounds per task."""
    rng = np.random.default_rng(seed + 7919)
    # 16 hues x 2 brightness levels: backgrounds far enough apart for frame features to separate.
    backgrounds = [_rgb(i / 16, 0.75, v) for v in (0.9, 0.55) for i in range(16)]
    combos = [
        (b, s, m) for b in range(len(backgrounds)) for s in range(len(SHAPES)) for m in range(len(MOTIONS))
    ]
    order = rng.permutation(len(combos))
    used: set[int] = set()
    looks: list[list[Look]] = []
    for count in task_step_counts:
        task_bgs: set[int] = set()
        task_looks: list[Look] = []
        for _ in range(count):
            pick = next(
                i for i in order if i not in used and combos[i][0] not in task_bgs
            )  # a task has < 32 steps, so a free background always exists
            used.add(int(pick))
            b, s, m = combos[pick]
            task_bgs.add(b)
            h = (b % 16) / 16
            # Shape colour: the complementary hue at full brightness stands out on either background.
            task_looks.append(Look(backgrounds[b], SHAPES[s], _rgb(h + 0.5, 0.6, 1.0), MOTIONS[m]))
        looks.append(task_looks)
    return looks


def make_jitter(rng: np.random.Generator) -> Jitter:
    """Draw one video's variation of a look."""
    d = rng.integers(-12, 13, size=3)
    return Jitter(
        dcolour=(int(d[0]), int(d[1]), int(d[2])),
        scale=float(rng.uniform(0.88, 1.12)),
        dx=int(rng.integers(-12, 13)),
        dy=int(rng.integers(-10, 11)),
        speed=float(rng.uniform(0.85, 1.15)),
        phase=float(rng.uniform(0, 2 * np.pi)),
    )


def shape_mask(shape: str, size: int) -> np.ndarray:
    """A size x size boolean mask of the shape."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    c = (size - 1) / 2
    x, y = (xx - c) / c, (yy - c) / c  # -1..1
    r = np.sqrt(x * x + y * y)
    if shape == "circle":
        return r <= 1.0
    if shape == "square":
        return (np.abs(x) <= 0.85) & (np.abs(y) <= 0.85)
    if shape == "triangle":
        return (y <= 0.9) & (y >= -0.9) & (np.abs(x) <= (y + 0.9) / 1.8)
    if shape == "diamond":
        return np.abs(x) + np.abs(y) <= 1.0
    if shape == "ring":
        return (r <= 1.0) & (r >= 0.55)
    if shape == "cross":
        return ((np.abs(x) <= 0.3) | (np.abs(y) <= 0.3)) & (np.abs(x) <= 1) & (np.abs(y) <= 1)
    raise ValueError(f"unknown shape {shape!r}")


def _offset(motion: str, t: float, speed: float, phase: float) -> tuple[float, float]:
    """Shape centre offset from frame centre at time t (seconds)."""
    w = 2 * np.pi * 0.35 * speed
    a = w * t + phase
    if motion == "sweep_x":
        return 80 * np.sin(a), 0.0
    if motion == "sweep_y":
        return 0.0, 55 * np.sin(a)
    if motion == "orbit":
        return 70 * np.cos(a), 45 * np.sin(a)
    if motion == "diagonal":
        return 70 * np.sin(a), 45 * np.sin(a)
    raise ValueError(f"unknown motion {motion!r}")


def rgb_to_yuv(rgb: tuple[int, int, int] | np.ndarray) -> np.ndarray:
    """BT.601 limited-range Y, U, V of an RGB colour (what ffmpeg's rgb24 -> yuv420p would give)."""
    r, g, b = (float(c) / 255 for c in rgb)
    y = 16 + 65.481 * r + 128.553 * g + 24.966 * b
    u = 128 - 37.797 * r - 74.203 * g + 112.0 * b
    v = 128 + 112.0 * r - 93.786 * g - 18.214 * b
    return np.clip(np.round([y, u, v]), 0, 255).astype(np.uint8)


class _Canvas:
    """A yuv420p frame (three planes, chroma at half size). Drawing straight in YUV spares ffmpeg an
    rgb->yuv conversion that cost as much as the H.264 encode itself."""

    def __init__(self, background: np.ndarray) -> None:
        y, u, v = rgb_to_yuv(background)
        self.planes = [np.full((HEIGHT, WIDTH), y, np.uint8)]
        self.planes += [np.full((HEIGHT // 2, WIDTH // 2), c, np.uint8) for c in (u, v)]

    def frame(self, paint: list[tuple[int, int, np.ndarray, np.ndarray]]) -> bytes:
        """Copy the background and paint (x0, y0, mask, yuv) patches at even offsets."""
        out = [p.copy() for p in self.planes]
        for x0, y0, mask, yuv in paint:
            h, w = mask.shape
            out[0][y0 : y0 + h, x0 : x0 + w][mask] = yuv[0]
            small = mask[::2, ::2]
            for plane, c in zip(out[1:], yuv[1:], strict=True):
                plane[y0 // 2 : y0 // 2 + small.shape[0], x0 // 2 : x0 // 2 + small.shape[1]][small] = c
        return b"".join(p.tobytes() for p in out)


def step_frames(look: Look, jitter: Jitter, n_frames: int, t0: float) -> Iterator[bytes]:
    """Yield raw yuv420p frames showing one step; t0 keeps motion continuous across cuts."""
    canvas = _Canvas(np.clip(np.array(look.background) + np.array(jitter.dcolour), 0, 255))
    size = int(100 * jitter.scale) // 2 * 2
    mask = shape_mask(look.shape, size)
    colour = rgb_to_yuv(look.colour)
    for i in range(n_frames):
        ox, oy = _offset(look.motion, t0 + i / FPS, jitter.speed, jitter.phase)
        x0 = int(WIDTH / 2 + ox + jitter.dx - size / 2)
        y0 = int(HEIGHT / 2 + oy + jitter.dy - size / 2)
        x0 = min(max(x0, 0), WIDTH - size) // 2 * 2
        y0 = min(max(y0, 0), HEIGHT - size) // 2 * 2
        yield canvas.frame([(x0, y0, mask, colour)])


def intro_frames(n_frames: int, rng_seed: int) -> Iterator[bytes]:
    """A dark title card with a white bar growing across it (no step is shown yet)."""
    canvas = _Canvas(np.array(INTRO_BG))
    bar_y = (100 + rng_seed % 40) // 2 * 2
    white = rgb_to_yuv((235, 235, 235))
    for i in range(n_frames):
        width = int(280 * (i + 1) / max(n_frames, 1)) // 2 * 2
        yield canvas.frame([(20, bar_y, np.ones((12, max(width, 2)), bool), white)])
