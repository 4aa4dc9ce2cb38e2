"""The generated world: deterministic from its seed, learnable pictures, the video mix the filters need."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tasks.demo.narration import Segment
from tasks.demo.videos import DemoVideo
from tasks.demo.world import MIN_WORDS, World, build_world, render_video


def _facts(world: World) -> list[tuple]:
    return [(v.id, v.title, v.view_count, v.captions, v.status, v.spoken_text, v.path.name if v.path else None)
            for v in world.videos]  # fmt: skip


def test_same_seed_same_world_other_seed_other_world(tmp_path: Path) -> None:
    a = build_world(tmp_path / "a", seed=0, render=False)
    b = build_world(tmp_path / "b", seed=0, render=False)
    c = build_world(tmp_path / "c", seed=1, render=False)
    assert _facts(a) == _facts(b)
    assert a.looks == b.looks
    assert {v.id for v in a.videos}.isdisjoint(v.id for v in c.videos)
    assert not (tmp_path / "a").exists()  # render=False never touches the cache


def test_rendering_is_byte_for_byte_deterministic(demo_world: World, tmp_path: Path) -> None:
    video = min((v for v in demo_world.videos if v.playable), key=lambda v: v.duration_ms)  # quick to render
    one = render_video(video, demo_world.looks, demo_world.seed, tmp_path / "1.mp4")
    two = render_video(video, demo_world.looks, demo_world.seed, tmp_path / "2.mp4")
    assert hashlib.sha256(one.read_bytes()).digest() == hashlib.sha256(two.read_bytes()).digest()
    assert video.path is not None and video.path.read_bytes() == one.read_bytes()


def test_build_time_is_reported(demo_world: World) -> None:
    # The session fixture built (or loaded) the world; a cold build is timed with
    # `howto demo-site build --world-dir <empty dir>` (see the README). No timed assertion here.
    print(f"demo world build: {demo_world.build_s:.1f}s for {len(demo_world.videos)} videos")
    assert demo_world.build_s >= 0


def test_world_mix(demo_world: World) -> None:
    usable = demo_world.usable
    assert len(usable) >= 30
    assert demo_world.step_count() >= 50
    for v in usable:
        assert len(v.words) >= MIN_WORDS and 20_000 <= v.duration_ms <= 45_000, v.id
    kinds = {v.captions for v in demo_world.videos}
    assert {"auto", "auto_music", "manual", "manual+auto", "none"} <= kinds
    statuses = [v.status for v in demo_world.videos]
    assert statuses.count("private") == 1 and statuses.count("removed") == 1
    assert any(v.language != "en" and v.english for v in demo_world.videos)
    assert any(v.view_count < 100 for v in demo_world.videos)
    assert any(v.reported_duration_s > 2000 for v in demo_world.videos)
    assert any(v.playable and len(v.words) < MIN_WORDS for v in demo_world.videos)
    ids = [v.id for v in demo_world.videos]
    assert len(set(ids)) == len(ids) and all(len(i) == 11 for i in ids)


def test_narration_follows_the_pictures(demo_world: World) -> None:
    for v in demo_world.usable:
        article = demo_world.article(v.task)
        assert article is not None
        flat = [s for m in article.methods for s in m.steps]
        segments = [s for s in v.segments if s.step is not None]
        for seg in segments:
            summary = flat[seg.step].summary  # type: ignore[index]
            assert summary[1:].rstrip(".").lower() in seg.text.lower()  # said while shown
            assert all(seg.start_ms <= w.start_ms < seg.end_ms for w in seg.words)


def _frame_at(video: DemoVideo, ms: int) -> np.ndarray:
    assert video.path is not None
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-ss", f"{ms / 1000:.3f}", "-i", str(video.path), "-frames:v", "1",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, np.uint8).reshape(240, 320, 3).astype(np.float32)


def _middle(seg: Segment) -> int:
    return (seg.start_ms + seg.end_ms) // 2


def test_same_step_looks_alike_across_videos_and_steps_differ(demo_world: World) -> None:
    videos = [v for v in demo_world.usable if v.task == "Make Banana Bread"][:2]
    shared = sorted(set(videos[0].steps) & set(videos[1].steps))
    assert len(shared) >= 3
    same, different = [], []
    for k in shared[:3]:
        a = _frame_at(videos[0], _middle(next(s for s in videos[0].segments if s.step == k)))
        b = _frame_at(videos[1], _middle(next(s for s in videos[1].segments if s.step == k)))
        same.append(np.abs(np.median(a, (0, 1)) - np.median(b, (0, 1))).sum())
        other = next(s for s in videos[1].segments if s.step is not None and s.step != k)
        c = _frame_at(videos[1], _middle(other))
        different.append(np.abs(np.median(a, (0, 1)) - np.median(c, (0, 1))).sum())
    assert max(same) < 45 < min(different), (same, different)


@pytest.mark.slow
def test_grown_world_adds_videos_to_existing_tasks(demo_world: World) -> None:
    grown = demo_world.grow()
    old = {v.id for v in demo_world.videos}
    new = [v for v in grown.videos if v.id not in old]
    assert new and all(v.generation == 1 and v.task in {a.title for a in demo_world.articles} for v in new)
    assert _facts(grown)[: len(demo_world.videos)] == _facts(demo_world)  # the base videos are unchanged
    assert (
        len(build_world(demo_world.cache_dir, 0, generation=2, render=False).videos) == len(grown.videos) + 2
    )
    assert all(v.path is not None and v.path.exists() for v in new)
    assert min(v.upload_date for v in new) > max(v.upload_date for v in demo_world.videos)
