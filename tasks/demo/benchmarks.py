"""The demo world's ground truth in the benchmarks' official layouts, for `howto eval` offline.

Every narrated step of a demo video has a time span (its narration segment). They are written as
a CrossTask release (`tasks_primary.txt`, `videos.csv`, `videos_val.csv`, `annotations/<task>_<vid>.csv`)
and as a YouCook2 `youcookii_annotations_trainval.json`, with the videos linked as `videos/<id>.mp4`.
The held-out videos (the training split's hash rule at the demo's fraction) are the CrossTask `val`
videos and the YouCook2 `validation` subset, so evaluating on them scores videos training never saw.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from storage.layout import DataRoot
from storage.private_temp import private_temp_dir
from tasks.demo.content import ARTICLES
from tasks.demo.videos import DemoVideo
from tasks.demo.world import World, task_steps
from tasks.train.split import is_heldout

TASK_ID_BASE = 90000  # CrossTask task ids are numbers; the demo's sit apart from the real ones


@dataclass(frozen=True)
class DemoBenchmarks:
    """Where the files went."""

    crosstask: Path  # the release folder
    youcook2: Path  # youcookii_annotations_trainval.json
    videos: Path  # <id>.mp4 links
    heldout: tuple[str, ...]  # video ids in the validation side


def demo_benchmark_dir(root: DataRoot) -> Path:
    """Benchmark files live under a local data root (benchmarks/demo), else in a local temp folder of the
    root's own (named by a hash of its URL), where `howto train compare` and `bench retrieval-ceiling` of the
    same root find them and another remote root's demo never writes over them."""
    if root.is_local:
        return Path(root.path("benchmarks", "demo"))
    key = hashlib.sha256(root.url.encode()).hexdigest()[:16]
    return private_temp_dir("howto-demo-benchmarks") / key


def demo_benchmark_layout(out: Path) -> tuple[Path, Path, Path]:
    """Under `out`: the CrossTask release folder, the YouCook2 annotation file and the videos folder."""
    return out / "crosstask", out / "youcookii_annotations_trainval.json", out / "videos"


def task_id(title: str) -> str:
    return str(TASK_ID_BASE + next(i for i, a in enumerate(ARTICLES) if a.title == title))


def step_text(summary: str) -> str:
    """A CrossTask-style step: lower case, no commas (the task card separates steps with commas)."""
    text = summary.strip().rstrip(".").replace(",", "")
    return text[0].lower() + text[1:]


def annotated_videos(world: World) -> list[DemoVideo]:
    """Videos a pipeline run keeps and that show steps: usable, English, rendered."""
    return [v for v in world.usable if v.language == "en" and v.path is not None and v.steps]


def _link(src: Path, dst: Path) -> None:
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    try:
        os.symlink(src, dst)
    except OSError:  # filesystems without symlinks
        shutil.copyfile(src, dst)


def write_demo_benchmarks(world: World, out: Path, heldout_fraction: float) -> DemoBenchmarks:
    """Write both layouts under `out` (crosstask/, youcookii_annotations_trainval.json, videos/)."""
    videos = annotated_videos(world)
    heldout = tuple(v.id for v in videos if is_heldout(v.id, heldout_fraction))
    release, youcook, media = demo_benchmark_layout(out)
    (release / "annotations").mkdir(parents=True, exist_ok=True)
    media.mkdir(parents=True, exist_ok=True)
    cards = []
    for title in dict.fromkeys(v.task for v in videos):
        article = world.article(title)
        assert article is not None
        steps = [step_text(s.summary) for s in task_steps(article)]
        url = "demo://wikihow/" + title.replace(" ", "-")
        cards.append(f"{task_id(title)}\n{title}\n{url}\n{len(steps)}\n{','.join(steps)}\n\n")
    (release / "tasks_primary.txt").write_text("".join(cards))
    rows = {False: [], True: []}  # type: dict[bool, list[str]]
    database = {}
    for v in videos:
        tid = task_id(v.task)
        url = f"demo://watch?v={v.id}"
        rows[v.id in heldout].append(f"{tid},{v.id},{url}\n")
        spans = [(s.step, s.start_ms, s.end_ms) for s in v.segments if s.step is not None]
        (release / "annotations" / f"{tid}_{v.id}.csv").write_text(
            "".join(f"{step + 1},{start / 1000:.3f},{end / 1000:.3f}\n" for step, start, end in spans)
        )
        article = world.article(v.task)
        assert article is not None
        flat = task_steps(article)
        database[v.id] = {
            "duration": round(v.duration_ms / 1000, 2),
            "subset": "validation" if v.id in heldout else "training",
            "recipe_type": tid,
            "annotations": [
                {
                    "segment": [round(start / 1000), round(end / 1000)],
                    "id": i,
                    "sentence": step_text(flat[step].summary),
                }  # fmt: skip
                for i, (step, start, end) in enumerate(spans)
            ],
            "video_url": url,
        }
        assert v.path is not None
        _link(v.path, media / f"{v.id}.mp4")
    (release / "videos.csv").write_text("".join(rows[False] + rows[True]))
    (release / "videos_val.csv").write_text("".join(rows[True]))
    youcook.write_text(json.dumps({"database": database}))
    return DemoBenchmarks(release, youcook, media, heldout)
