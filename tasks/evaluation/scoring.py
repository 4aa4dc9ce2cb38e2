"""Scores of one benchmark from its items and an embedder, as metric rows (no files, no checkpoints)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from models.evaluate import TIE_RULES, retrieval_metrics, tied_queries
from tasks.evaluation.crosstask import ground_truth, localise, recall_counts, second_spans_ms, task_recalls
from tasks.evaluation.embedder import Embedder
from tasks.evaluation.formats import FeatureItems, Segment, TaskCard
from tasks.train.clip_tokens import token_inputs
from tasks.train.pooling import MODEL_FPS, MODELS, VideoFeatures, pool_clips
from tasks.train.second_tokens import clip_seconds, second_tokens, span_tokens, token_widths


@dataclass
class Scores:
    """Metric rows (metric, value, n, tie_rule) and counts worth printing (queries, videos, misses)."""

    rows: list[dict[str, object]] = field(default_factory=list)

    def add(self, metric: str, value: float, n: int, tie_rule: str | None = None) -> None:
        self.rows.append({"metric": metric, "value": float(value), "n": int(n), "tie_rule": tie_rule})


def _l2(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def retrieval_scores(
    text_emb: np.ndarray,
    video_emb: np.ndarray,
    scores: Scores | None = None,
    answers: np.ndarray | None = None,
) -> Scores:
    """Text-to-video retrieval over one score matrix of all pairs (query i's answer is video i, or video
    `answers[i]`), under both tie rules, and how many queries tie with their answer."""
    scores = scores or Scores()
    sim = torch.from_numpy(np.asarray(text_emb, np.float32) @ np.asarray(video_emb, np.float32).T)
    n = sim.shape[0]
    right = None if answers is None else torch.from_numpy(np.asarray(answers, np.int64))
    for rule in TIE_RULES:
        for metric, value in retrieval_metrics(sim, rule, right).items():
            scores.add(metric, value, n, rule)
    scores.add("tied_queries", tied_queries(sim, right), n)
    return scores


def distinct_videos(video_ids: Sequence[str]) -> tuple[list[int], np.ndarray]:
    """The queries' candidates when a candidate is a whole video: each distinct video once (the index of
    the first query naming it) and each query's answer among them. A MSR-VTT file may give a video several
    sentences (the full test set has 20 a video): one column per query put copies of the answer among the
    candidates, which tie with it, so every such query ranked below its own copies (R@1 0 with ties
    against the model) among too many candidates."""
    column: dict[str, int] = {}
    firsts: list[int] = []
    answers = np.empty(len(video_ids), np.int64)
    for i, vid in enumerate(video_ids):
        if vid not in column:
            column[vid] = len(firsts)
            firsts.append(i)
        answers[i] = column[vid]
    return firsts, answers


def feature_items_input(items: FeatureItems) -> np.ndarray:
    """The reference dataloaders' video input: cat(L2(2d), L2(3d))."""
    return np.concatenate([_l2(items.feat_2d), _l2(items.feat_3d)], axis=1).astype(np.float32)


def score_feature_items(items: FeatureItems, embedder: Embedder, whole_videos: bool = False) -> Scores:
    """Retrieval on released features (youcook_val.pkl, MSRVTT_JSFUSION_test.pth). `whole_videos`: an
    item's id names its candidate (MSR-VTT), so items of one video share one; otherwise each item is one
    (YouCook2's clips, several a video)."""
    video = feature_items_input(items)
    if not whole_videos:
        return retrieval_scores(embedder.text(items.captions), embedder.video(video))
    firsts, answers = distinct_videos(items.ids)
    scores = retrieval_scores(embedder.text(items.captions), embedder.video(video[firsts]), answers=answers)
    scores.add("candidates", len(firsts), len(items.ids))
    return scores


def span_inputs(
    spans_by_video: Sequence[tuple[Mapping[str, np.ndarray], np.ndarray]], embedder: Embedder
) -> np.ndarray:
    """What the embedder's video tower reads for spans (ms) of videos (their feature rows), in order.

    A pooled tower gets each span pooled as its run's clips were (L2, concat: (n, d_video)). A tower of
    per-second tokens gets the tokens of each span's seconds [floor(start), ceil(end)), zero-padded to the
    longest ((n, T, d_video) float16, `padded_tokens`), cut as training and `howto eval heldout` cut them:
    one pooled vector read as one token is an input it never trained on. VideoCLIP's lite tower gets
    the mean of those tokens ((n, d_video)), as its training windows were averaged: a span pooled per the
    run's --clip-pool (max by default) is another input."""
    if embedder.video_input == "pooled":
        parts = [pool_clips(rows, spans, pooling=embedder.pooling) for rows, spans in spans_by_video]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
    seqs: list[np.ndarray] = []
    widths: tuple[int, ...] = ()
    for rows, spans in spans_by_video:
        tokens, widths = second_tokens(rows), token_widths(rows)
        seqs += [span_tokens(tokens, *clip_seconds(start, end), dtype=np.float16) for start, end in spans]
    return token_inputs(seqs, widths, mean=embedder.video_input == "token mean")


def segment_inputs(
    segments: Sequence[Segment], videos: Mapping[str, VideoFeatures], embedder: Embedder
) -> tuple[list[Segment], np.ndarray]:
    """Segments whose video has features, and their video inputs (`span_inputs`)."""
    kept: list[Segment] = []
    spans_by_video = []
    by_video: dict[str, list[Segment]] = {}
    for seg in segments:
        if seg.video_id in videos:
            by_video.setdefault(seg.video_id, []).append(seg)
    for vid, segs in by_video.items():
        spans = np.array([[round(s.start_s * 1000), round(s.end_s * 1000)] for s in segs], dtype=np.int64)
        spans_by_video.append((videos[vid].rows, spans))
        kept.extend(segs)
    return kept, span_inputs(spans_by_video, embedder)


def whole_video_inputs(
    video_ids: Sequence[str], videos: Mapping[str, VideoFeatures], embedder: Embedder
) -> np.ndarray:
    """Each video's inputs over its whole length (MSR-VTT clips are whole videos)."""
    spans_by_video = []
    for vid in video_ids:
        feats = videos[vid].rows
        end_ms = int(max(len(feats[m]) / MODEL_FPS[m] for m in MODELS) * 1000)
        spans_by_video.append((feats, np.array([[0, end_ms]], dtype=np.int64)))
    return span_inputs(spans_by_video, embedder)


def seconds_of(features: VideoFeatures) -> int:
    """T for CrossTask: the video's seconds, one 2D row per second."""
    return int(len(features.rows[MODELS[0]]))


def crosstask_scores(
    cards: Mapping[str, TaskCard],
    annotated: Mapping[str, Mapping[str, list[tuple[int, float, float]]]],
    videos: Mapping[str, VideoFeatures],
    embedder: Embedder,
    window_s: float = 5.0,
    chance_draws: int = 5,
    seed: int = 0,
) -> Scores:
    """Step recall per task (annotated[task][video] = its step segments), averaged over the tasks.

    Per second t the video rows of a `window_s` window around t are pooled as a training clip was (a
    tower of per-second tokens reads the window's tokens instead, VideoCLIP's lite tower their mean:
    `span_inputs`), step texts go through the text side, O = V S^T, then log-softmax over steps and the DP. The chance
    level is the same recall with `chance_draws` random score matrices per video.
    """
    counts: dict[str, list[tuple[int, int]]] = {}
    chance: dict[str, list[tuple[int, int]]] = {}
    rng = np.random.default_rng(seed)
    n_videos = 0
    for task, per_video in annotated.items():
        steps = list(cards[task].steps)
        step_emb = embedder.text(steps)
        for vid, segments in per_video.items():
            if vid not in videos:
                continue
            n_seconds = seconds_of(videos[vid])
            windows = span_inputs([(videos[vid].rows, second_spans_ms(n_seconds, window_s))], embedder)
            scores = embedder.video(windows) @ step_emb.T
            y_true = ground_truth(n_seconds, len(steps), segments)
            counts.setdefault(task, []).append(recall_counts(y_true, localise(scores)))
            for _ in range(chance_draws):
                random_scores = rng.standard_normal(scores.shape)
                chance.setdefault(task, []).append(recall_counts(y_true, localise(random_scores)))
            n_videos += 1
    out = Scores()
    recalls = task_recalls(counts)
    for task, value in recalls.items():
        out.add(f"recall:{task}", value, sum(n for _, n in counts[task]))
    steps_total = sum(n for pairs in counts.values() for _, n in pairs)
    out.add("recall", float(np.mean(list(recalls.values()))) if recalls else 0.0, steps_total)
    if chance_draws:
        chance_recalls = task_recalls(chance)
        out.add(
            "recall_chance",
            float(np.mean(list(chance_recalls.values()))) if chance_recalls else 0.0,
            steps_total,
        )
    out.add("tasks", len(recalls), len(recalls))
    out.add("videos", n_videos, n_videos)
    return out
