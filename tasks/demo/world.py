"""Build the demo world from a seed: tasks, videos (rendered once, cached by seed) and their facts."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from tasks.demo import content, media, sounds
from tasks.demo.content import ARTICLES, Article, Step
from tasks.demo.narration import Segment, build_segments, intro_script, pad_scripts, retime, step_script
from tasks.demo.videos import DemoVideo, video_id
from tasks.demo.visuals import FPS, Look, assign_looks, intro_frames, make_jitter, step_frames

log = logging.getLogger(__name__)

TONES_HZ = (220, 330, 440)  # the narrator stand-in's voice pitch, one per video
RENDER_VERSION = 4  # bump when pictures or encoding change, so stale cached videos are not reused
MIN_WORDS = 100  # HowTo100M keeps videos whose captions have at least this many words
FEW_WORDS = 40  # the short-narration video says fewer than MIN_WORDS
LOW_VIEWS = 37
LONG_DURATION_S = 2417
_CHANNELS = ("Kitchen Basics", "DIY Dad", "HomeHow", "Quick Tips TV", "Garage Guru", "Maker Mia", "EasyFix")
_TITLE_FORMS = (
    "How to {t}",
    "How To {T} (Quick & Easy)",
    "{t} - easy step by step guide",
    "The BEST way to {t}!",
    "{T} in under a minute",
    "how to {t} like a pro",
)


def default_cache_dir() -> Path:
    """Where worlds are cached: $HOWTO_DEMO_CACHE, else the user cache (~/.cache/howto/demo_world)."""
    env = os.environ.get("HOWTO_DEMO_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "howto" / "demo_world"


def task_steps(article: Article) -> list[Step]:
    """An article's steps flattened over its methods (the index is the task's step index)."""
    return [s for m in article.methods for s in m.steps]


@dataclass
class World:
    """The generated world: articles, videos and the per-step looks (what each step shows)."""

    seed: int
    generation: int
    cache_dir: Path
    articles: tuple[Article, ...]
    videos: list[DemoVideo]
    looks: dict[tuple[str, int], Look] = field(default_factory=dict)
    build_s: float = 0.0

    def video(self, vid: str) -> DemoVideo | None:
        """The video with this id, or None."""
        return next((v for v in self.videos if v.id == vid), None)

    def videos_for(self, task: str) -> list[DemoVideo]:
        """Videos made for a task (by exact article title)."""
        return [v for v in self.videos if v.task == task]

    def article(self, title: str) -> Article | None:
        """The article with this exact title, or None."""
        return next((a for a in self.articles if a.title == title), None)

    @property
    def usable(self) -> list[DemoVideo]:
        """Videos HowTo100M's filters keep: playable, English captions, >= 100 words, views, length."""
        return [
            v
            for v in self.videos
            if v.playable
            and v.language == "en"
            and v.captions != "none"
            and len(v.words) >= MIN_WORDS
            and v.view_count >= 100
            and v.reported_duration_s <= 2000
        ]

    def visual_tasks(self) -> list[Article]:
        """The tasks a HowTo100M-style miner keeps: not in an abstract level-1 category, and the
        duplicate title (same words ignoring case and punctuation) counted once (first kept)."""
        seen: set[str] = set()
        kept = []
        for a in self.articles:
            key = " ".join(re.findall(r"[a-z0-9]+", a.title.lower()))
            if a.category_path[0] in content.ABSTRACT_LEVEL1 or key in seen:
                continue
            seen.add(key)
            kept.append(a)
        return kept

    def step_count(self) -> int:
        """Distinct steps shown by the world's videos."""
        return len({(v.task, s) for v in self.videos for s in v.steps})

    def grow(self) -> World:
        """The same world one crawl later: extra videos appear for existing tasks."""
        return build_world(self.cache_dir, self.seed, self.generation + 1)


def _scripts(
    article: Article, steps: list[int], rng: np.random.Generator, music: bool
) -> list[tuple[int | None, str]]:
    flat = task_steps(article)
    texts = [step_script(flat[k].summary, flat[k].detail, rng, first=i == 0) for i, k in enumerate(steps)]
    intro = intro_script(article.title, rng)
    spoken_intro = 0 if music else len(intro.split())  # a music intro says nothing
    texts = pad_scripts(texts, MIN_WORDS + 8 - spoken_intro, rng)
    return [(None, intro), *zip(steps, texts, strict=True)]


def _pick_steps(article: Article, rng: np.random.Generator, few: bool) -> list[int]:
    """One method's steps in order; sometimes one middle step is skipped, as real videos do."""
    starts = np.cumsum([0] + [len(m.steps) for m in article.methods])
    m = int(rng.integers(len(article.methods)))
    steps = list(range(int(starts[m]), int(starts[m + 1])))
    if few:
        return steps[:2]
    if len(steps) > 5 and rng.random() < 0.4:
        steps.pop(int(rng.integers(1, len(steps) - 1)))
    return steps


def _plan(seed: int, generation: int) -> list[dict]:
    """Decide every video's identity and quirks (no rendering yet)."""
    rng = np.random.default_rng(seed)
    base = [{"task": a.title, "n": n, "gen": 0} for a in ARTICLES for n in range(a.videos)]
    # A grown world adds one video per generation to the first two tasks, after the base videos so
    # that every base video stays exactly as it was.
    grown = [
        {"task": a.title, "n": a.videos + g - 1, "gen": g}
        for g in range(1, generation + 1)
        for a in ARTICLES[:2]
    ]
    plans = base + grown
    order = [int(i) for i in rng.permutation(len(base))]
    spanish = next(i for i in order if base[i]["task"] == content.SPANISH_TASK)
    others = [i for i in order if i != spanish]
    quirks = ["private", "removed", "none", "none", "few", "low", "long"]
    for q, i in zip(quirks, others, strict=False):
        base[i]["quirk"] = q
    base[spanish]["quirk"] = "spanish"
    kinds = ("auto", "auto", "auto_music", "manual", "manual+auto", "auto", "manual", "auto_music")
    for i, p in enumerate(plans):
        p.setdefault("quirk", "")
        p["captions"] = "none" if p["quirk"] == "none" else kinds[(i + seed) % len(kinds)]
        if p["quirk"] == "spanish":
            p["captions"] = "auto"  # its only English is then the tlang=en machine translation
    return plans


def _make_video(plan: dict, seed: int, out_dir: Path) -> DemoVideo:
    article = next(a for a in ARTICLES if a.title == plan["task"])
    vid = video_id(seed, plan["task"], plan["n"], plan["gen"])
    rng = np.random.default_rng(int.from_bytes(vid.encode()[:4], "big"))
    quirk = plan["quirk"]
    steps = _pick_steps(article, rng, few=quirk == "few")
    music = plan["captions"] == "auto_music"
    scripts = _scripts(article, steps, rng, music)
    if quirk == "few":
        scripts = [(k, " ".join(t.split()[: FEW_WORDS // len(scripts)])) for k, t in scripts]
    segments = build_segments(scripts, rng, music_intro=music)
    language, english = "en", tuple[Segment, ...]()
    if quirk == "spanish":
        language = "es"
        english = tuple(segments)
        spanish = ["Hola a todos, hoy les enseño a hacer limonada casera."] + [
            content.SPANISH_STEPS[k] for k in steps
        ]
        segments = retime(segments, spanish, rng)
    duration_ms = segments[-1].end_ms
    form = _TITLE_FORMS[(plan["n"] + plan["gen"]) % len(_TITLE_FORMS)]
    title = form.format(t=article.title.lower(), T=article.title)
    if language == "es":
        title = "Cómo hacer limonada casera (receta fácil)"
    days = int(rng.integers(0, 1500))  # base videos: 2019-2023; a grown world's are newer than all
    upload = (
        date(2019, 1, 1) + timedelta(days=days)
        if not plan["gen"]
        else date(2024, 1, 1) + timedelta(days=days % 30 + 60 * plan["gen"])
    )
    views = LOW_VIEWS if quirk == "low" else int(10 ** rng.uniform(3, 6.3))
    playable = quirk not in ("private", "removed")
    video = DemoVideo(
        id=vid,
        task=article.title,
        title=title,
        channel=_CHANNELS[int(rng.integers(len(_CHANNELS)))],
        upload_date=upload.strftime("%Y%m%d"),
        view_count=views,
        duration_ms=duration_ms,
        reported_duration_s=LONG_DURATION_S if quirk == "long" else round(duration_ms / 1000),
        language=language,
        captions=plan["captions"],
        status={"private": "private", "removed": "removed"}.get(quirk, "ok"),
        segments=tuple(segments),
        english=english,
        generation=plan["gen"],
        tone_hz=TONES_HZ[int(rng.integers(len(TONES_HZ)))],
        path=out_dir / f"{vid}.mp4" if playable else None,
    )
    return video


def _frames(video: DemoVideo, looks: dict[tuple[str, int], Look], seed: int) -> Iterator[bytes]:
    rng = np.random.default_rng(int.from_bytes(video.id.encode()[4:8], "big") + seed)
    t = 0.0
    done = 0
    for seg in video.segments:
        n = round(seg.end_ms * FPS / 1000) - done  # cumulative rounding keeps frames on the timeline
        if seg.step is None:
            yield from intro_frames(n, int(rng.integers(1000)))
        else:
            yield from step_frames(looks[(video.task, seg.step)], make_jitter(rng), n, t)
        done += n
        t += n / FPS


def render_video(
    video: DemoVideo, looks: dict[tuple[str, int], Look], seed: int, out: Path | None = None
) -> Path:
    """Render one video's mp4 (to out, default its cache path) and return the path."""
    target = out or video.path
    if target is None:
        raise ValueError(f"{video.id} is {video.status}: it has no video file")
    media.encode_mp4(
        target, _frames(video, looks, seed), sounds.pcm16(_wave(video, seed)), sounds.SAMPLE_RATE
    )
    return target


def _wave(video: DemoVideo, seed: int) -> np.ndarray:
    """The video's sound: its steps' textures under the narration (seeded by the id, like its pictures)."""
    video_seed = int.from_bytes(video.id.encode()[8:11], "big") + seed
    return sounds.video_wave(video.segments, video.task, video.tone_hz, video.duration_ms, seed, video_seed)


def _render_key(video: DemoVideo, looks: dict[tuple[str, int], Look], seed: int) -> str:
    """Hash of a video's pictures and sound: timeline, step looks and textures, tone, seed, render version."""
    parts = [RENDER_VERSION, seed, video.id, video.tone_hz, sounds.SAMPLE_RATE]
    parts += [
        (
            s.step,
            s.start_ms,
            s.end_ms,
            s.step is not None and looks[(video.task, s.step)],
            s.step is not None and sounds.texture_for(video.task, s.step, seed),
        )
        for s in video.segments
    ]
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:10]


def build_world(cache_dir: Path, seed: int = 0, generation: int = 0, render: bool = True) -> World:
    """Build (or load from cache) the world for a seed; only missing videos are rendered.

    render=False plans everything (ids, narration, captions, file names) without running ffmpeg.
    """
    started = time.perf_counter()
    out_dir = Path(cache_dir) / f"seed-{seed}-r{RENDER_VERSION}"
    plans = _plan(seed, generation)
    videos = [_make_video(p, seed, out_dir) for p in plans]
    with_videos = [a for a in ARTICLES if a.videos]
    all_looks = assign_looks([len(task_steps(a)) for a in with_videos], seed)
    looks = {
        (a.title, k): lk
        for a, task_looks in zip(with_videos, all_looks, strict=True)
        for k, lk in enumerate(task_looks)
    }
    # The file name carries a hash of everything drawn, so a code change never serves a stale video.
    videos = [
        replace(v, path=out_dir / f"{v.id}-{_render_key(v, looks, seed)}.mp4") if v.path else v
        for v in videos
    ]
    todo = [v for v in videos if v.path is not None and not v.path.exists()]

    if todo and render:
        media.ffmpeg_bin()  # fail fast with a clear message before starting threads
        with ThreadPoolExecutor(max_workers=2) as pool:  # one ffmpeg per core
            list(pool.map(lambda v: render_video(v, looks, seed), todo))
    world = World(seed, generation, Path(cache_dir), ARTICLES, videos, looks)
    world.build_s = time.perf_counter() - started
    log.info(
        "demo world seed=%s gen=%s: %d videos (%d rendered) in %.1fs",
        seed,
        generation,
        len(videos),
        len(todo),
        world.build_s,
    )
    return world
