"""`howto bench retrieval-ceiling`: step labels of a demo root's clips and the ceilings they give.

Reads `clip_pairs` (spans, texts, split by video hash as training does), the demo's CrossTask files
under <root>/benchmarks/demo/crosstask, `frame_features` (repooled two ways) and MiniLM vectors of the
lines (the `text_embeddings` cache when it covers them). The numbers come from
`tasks/bench/retrieval_ceiling.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from storage.layout import DataRoot
from storage.shards import list_markers, read_shard
from tasks.bench.retrieval_ceiling import (
    NO_STEP,
    ProbeResult,
    label_clip,
    majority_chance,
    nearest_neighbour_accuracy,
    prior_chance,
    ridge_probe,
    tie_ceiling,
)
from tasks.demo.benchmarks import demo_benchmark_dir, demo_benchmark_layout
from tasks.evaluation.formats import read_step_annotation, read_task_cards, read_task_videos
from tasks.train.pooling import ClipPooling, features_by_video, pool_clips
from tasks.train.prepare import MINILM_NAME
from tasks.train.split import is_heldout

# The two poolings compared: HowTo100M's, and the widened mean `howto train compare` trains on.
POOLINGS: tuple[tuple[str, ClipPooling], ...] = (
    ("max over the line (HowTo100M)", ClipPooling("max", 0.0)),
    ("mean over the line +-2 s", ClipPooling("mean", 2.0)),
)
REQUIRED_FILES = ("tasks_primary.txt", "videos.csv")


class CeilingDataError(ValueError):
    """The root lacks what the ceilings need (message names the file or dataset)."""


def crosstask_release(root: DataRoot) -> Path:
    """Where `howto demo` writes the demo's CrossTask release under the root."""
    return demo_benchmark_layout(demo_benchmark_dir(root))[0]


def missing_file(release: Path) -> Path | None:
    """The first required CrossTask file absent from `release`, or None."""
    return next((release / n for n in REQUIRED_FILES if not (release / n).is_file()), None)


@dataclass(frozen=True)
class StepAnnotations:
    """CrossTask task of every listed video and the annotated segments of those that have a file."""

    video_task: dict[str, str]
    segments: dict[str, list[tuple[int, float, float]]]


def read_annotations(release: Path) -> StepAnnotations:
    """videos.csv (+ videos_val.csv) for each video's task, annotations/<task>_<video>.csv for its steps."""
    cards = read_task_cards(release / "tasks_primary.txt")
    video_task: dict[str, str] = {}
    for name in ("videos.csv", "videos_val.csv"):
        if (release / name).is_file():
            for task, videos in read_task_videos(release / name).items():
                video_task.update(dict.fromkeys(videos, task))
    segments = {}
    for video, task in video_task.items():
        path = release / "annotations" / f"{task}_{video}.csv"
        if task in cards and path.is_file():
            segments[video] = read_step_annotation(path, len(cards[task].steps))
    return StepAnnotations(video_task, segments)


@dataclass(frozen=True)
class LabelledClips:
    """The clip_pairs rows of annotated videos with their step labels and split."""

    clip_ids: list[str]
    video_ids: list[str]
    shards: np.ndarray  # (n,) clip_pairs shard of each row
    spans_ms: np.ndarray  # (n, 2)
    texts: list[str]
    labels: list[str]
    heldout: np.ndarray  # (n,) bool
    left_out_videos: int  # videos without a step annotation file (their clips are not counted)
    left_out_clips: int


def label_clips(root: DataRoot, annotations: StepAnnotations, heldout_fraction: float) -> LabelledClips:
    """Every clip_pairs shard's clips of annotated videos, labelled by `label_clip`."""
    markers = list_markers(root, "clip_pairs")
    if not markers:
        raise CeilingDataError(f"{root.url}: no clip_pairs shards; run `howto demo` (or `howto train`) first")
    kept: list[tuple[str, str, int, int, int, str, str]] = []  # clip, video, shard, start, end, text, label
    left_videos: set[str] = set()
    left_clips = 0
    for marker in markers:
        table = read_shard(root, "clip_pairs", marker.shard)
        if table is None:
            continue
        columns = table.select(["clip_id", "video_id", "start_ms", "end_ms", "text"]).to_pydict()
        for clip, video, start, end, text in zip(*columns.values(), strict=True):
            if video not in annotations.segments:
                left_videos.add(video)
                left_clips += 1
                continue
            task, segments = annotations.video_task[video], annotations.segments[video]
            label = label_clip(task, segments, start / 1000, end / 1000)
            kept.append((clip, video, marker.shard, start, end, text, label))
    videos = [row[1] for row in kept]
    return LabelledClips(
        [row[0] for row in kept], videos, np.array([row[2] for row in kept], dtype=np.int64),
        np.array([(row[3], row[4]) for row in kept], dtype=np.int64).reshape(-1, 2),
        [row[5] for row in kept], [row[6] for row in kept],
        np.array([is_heldout(v, heldout_fraction) for v in videos], dtype=bool), len(left_videos), left_clips,
    )  # fmt: skip


def video_vectors(root: DataRoot, clips: LabelledClips, pooling: ClipPooling) -> np.ndarray:
    """(n, d) clip vectors pooled from each clip's frame_features shard (the shard of its clip_pairs row)."""
    out: list[np.ndarray | None] = [None] * len(clips.clip_ids)
    for shard in np.unique(clips.shards):
        table = read_shard(root, "frame_features", int(shard))
        by_video = features_by_video(table) if table is not None else {}
        rows = np.flatnonzero(clips.shards == shard)
        for video in dict.fromkeys(clips.video_ids[i] for i in rows):
            mine = [i for i in rows if clips.video_ids[i] == video]
            if video not in by_video:
                raise CeilingDataError(f"{root.url}: frame_features shard {shard} has no rows for {video}")
            pooled = pool_clips(by_video[video].rows, clips.spans_ms[mine], pooling=pooling)
            for i, vector in zip(mine, pooled, strict=True):
                out[i] = vector
    return np.stack([v for v in out if v is not None]) if clips.clip_ids else np.zeros((0, 0))


def cached_text_vectors(root: DataRoot, clips: LabelledClips) -> np.ndarray | None:
    """MiniLM vectors from the text_embeddings cache, or None unless it has every clip."""
    found: dict[str, np.ndarray] = {}
    for shard in np.unique(clips.shards):
        table = read_shard(root, "text_embeddings", int(shard))
        if table is None or set(table.column("encoder").to_pylist()) != {MINILM_NAME}:
            return None
        for clip, vector in zip(
            table.column("clip_id").to_pylist(), table.column("vector").to_pylist(), strict=True
        ):
            found[clip] = np.asarray(vector, dtype=np.float32)
    if not all(c in found for c in clips.clip_ids):
        return None
    return np.stack([found[c] for c in clips.clip_ids]) if clips.clip_ids else np.zeros((0, 0))


@dataclass(frozen=True)
class CeilingReport:
    """Everything `report_lines` prints."""

    k: int
    heldout_fraction: float
    clips: LabelledClips
    tie: float
    video: dict[str, ProbeResult]  # pooling name -> probe
    video_dims: int
    text: float
    text_source: str
    prior: float
    majority: float


def measure(
    root: DataRoot,
    heldout_fraction: float,
    k: int,
    encode: Callable[[list[str]], np.ndarray] | None = None,
) -> CeilingReport:
    """Label the clips, then the tie ceiling, the video probes per pooling and the text 1-NN.

    `encode` (MiniLM by default, loaded only if the text_embeddings cache lacks some clip) embeds lines."""
    release = crosstask_release(root)
    if (missing := missing_file(release)) is not None:
        raise CeilingDataError(f"{missing}: no such file; `howto demo` writes the demo benchmark files")
    clips = label_clips(root, read_annotations(release), heldout_fraction)
    train, held = np.flatnonzero(~clips.heldout), np.flatnonzero(clips.heldout)
    if len(train) == 0 or len(held) == 0:
        raise CeilingDataError(
            f"{root.url}: {len(train)} training and {len(held)} held-out labelled clips; both must be non-empty"
        )
    labels = clips.labels
    train_labels, held_labels = [labels[i] for i in train], [labels[i] for i in held]
    groups = [clips.video_ids[i] for i in train]
    probes, dims = {}, 0
    for name, pooling in POOLINGS:
        x = video_vectors(root, clips, pooling)
        dims = x.shape[1]
        probes[name] = ridge_probe(x[train], train_labels, groups, x[held], held_labels)
    text = cached_text_vectors(root, clips)
    source = "cached text_embeddings"
    if text is None:
        if encode is None:  # loads torch and the sentence model: only when the cache falls short
            from tasks.train.stage import minilm_encode

            encode = minilm_encode
        text, source = np.asarray(encode(clips.texts), dtype=np.float32), "encoded now"
    return CeilingReport(
        k, heldout_fraction, clips, tie_ceiling(held_labels, k), probes, dims,
        nearest_neighbour_accuracy(text[train], train_labels, text[held], held_labels), source,
        prior_chance(train_labels, held_labels), majority_chance(train_labels, held_labels),
    )  # fmt: skip


def report_lines(report: CeilingReport) -> list[str]:
    """The printed summary: counts, (a) tie ceiling, (b) video probes, (c) text 1-NN, (d) chance."""
    clips, k = report.clips, report.k
    held = [lab for lab, h in zip(clips.labels, clips.heldout, strict=True) if h]
    train_videos = {v for v, h in zip(clips.video_ids, clips.heldout, strict=True) if not h}
    held_videos = {v for v, h in zip(clips.video_ids, clips.heldout, strict=True) if h}
    n_held, n_train = len(held), len(clips.labels) - len(held)
    lines = [
        f"clips: {n_train} training ({len(train_videos)} videos), {n_held} held-out ({len(held_videos)} videos) "
        f"at held-out fraction {report.heldout_fraction}; left out: {clips.left_out_clips} clips of "
        f"{clips.left_out_videos} videos without step annotations",
        f"labels: {len(set(clips.labels))} (a task's annotated step, or its '{NO_STEP}'), "
        f"{len(set(held))} among held-out clips",
        f"(a) step-tie ceiling of text->video R@{k}: {report.tie:.3f} "
        f"(mean over held-out clips of min(1, {k} / clips sharing its label)); chance R@{k} "
        f"{min(k, n_held) / n_held:.3f}",
        f"(b) video-only step accuracy on held-out clips (ridge on standardised {report.video_dims}-d "
        "vectors, penalty by grouped 4-fold CV on training videos):",
    ]
    for name, probe in report.video.items():
        lines.append(f"    {name}: {probe.accuracy:.3f} (lambda {probe.lam:g})")
    lines += [
        f"(c) text-only step accuracy on held-out lines (1-NN over training lines' MiniLM, "
        f"{report.text_source}): {report.text:.3f}",
        f"(d) chance step accuracy: {report.prior:.3f} guessing at training label frequencies, "
        f"{report.majority:.3f} always the most frequent training label",
    ]
    return lines
