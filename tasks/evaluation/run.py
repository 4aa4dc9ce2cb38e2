"""One evaluation of one checkpoint on one benchmark split: read the files, score, record.

Each `eval_*` reads and checks the benchmark's files first (a bad file fails before any model or video
work), then records through `results.record`, which scores only when this exact evaluation is new.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from storage.layout import DataRoot
from storage.shards import list_markers
from tasks.common import config_hash
from tasks.evaluation import formats
from tasks.evaluation.audio import add_audio_scores, audio_checkpoint, audio_fingerprint
from tasks.evaluation.crosstask import zero_shot_split
from tasks.evaluation.embedder import CheckpointEmbedder, CheckpointRef, Embedder, InputMismatch
from tasks.evaluation.features import benchmark_features, find_videos
from tasks.evaluation.heldout import sample_heldout
from tasks.evaluation.results import EvalResult, digest_files, digest_listing, record
from tasks.evaluation.scoring import (
    Scores,
    crosstask_scores,
    distinct_videos,
    retrieval_scores,
    score_feature_items,
    segment_inputs,
    whole_video_inputs,
)
from tasks.features.config import ExtractFeaturesConfig
from tasks.train.clip_tokens import clip_tokens
from tasks.train.data import pair_shards
from tasks.train.prepare import require_pairs_pooled, require_same_features

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


class NoVideos(FileNotFoundError):
    """None of a benchmark's videos was found under the given folder."""


@dataclass
class Setup:
    """What every benchmark evaluation needs besides its files."""

    root: DataRoot
    checkpoint: str | None = None  # path, run id, or None for the newest run
    features: ExtractFeaturesConfig = field(default_factory=ExtractFeaturesConfig)
    max_words: int | None = None
    progress: Progress = log.info
    encode: Callable[[list[str]], np.ndarray] | None = None  # MiniLM stand-in (tests)
    embedder: Embedder | None = None  # instead of the checkpoint's (tests)
    reuse_root_features: bool = False  # benchmark videos already in frame_features keep those rows
    features_note: str = ""  # said once benchmark videos get features (where their config came from)

    def load(self) -> tuple[Embedder, CheckpointRef]:
        if self.embedder is not None:
            return self.embedder, CheckpointRef(self.checkpoint or "given", "given")
        model, ref, _ = CheckpointEmbedder.load(self.root, self.checkpoint, self.max_words, self.encode)
        return model, ref

    def fingerprint(self, **more: Any) -> dict[str, Any]:
        return {"max_words": self.max_words, **more}


def _video_features(setup: Setup, benchmark: str, videos: dict[str, Path], scores: Scores) -> dict[str, Any]:
    if setup.features_note:
        setup.progress(setup.features_note)
    found = benchmark_features(
        setup.root, benchmark, videos, setup.features, setup.progress, setup.reuse_root_features
    )
    scores.add("videos_failed", len(found.failed), len(videos))
    return found.videos


def _folder_features(
    setup: Setup, benchmark: str, found: dict[str, Path], missing: list[str]
) -> tuple[Scores, dict[str, Any]]:
    """Features of a retrieval benchmark's videos, and its first scores: videos missing from the folder,
    then videos that failed to decode."""
    scores = Scores()
    scores.add("videos_missing", len(missing), len(found) + len(missing))
    return scores, _video_features(setup, benchmark, found, scores)


def _find(video_dir: Path, ids: Iterable[str], what: str) -> tuple[dict[str, Path], list[str]]:
    if not video_dir.is_dir():
        why = "is a file, not a folder of videos" if video_dir.exists() else "no such folder of videos"
        raise formats.BenchmarkFileError(video_dir, why)
    found, missing = find_videos(video_dir, ids)
    if not found:
        raise NoVideos(
            f"{video_dir}: none of the {len(missing)} {what} videos is there (looked for <id>.mp4 etc.)"
        )
    return found, missing


# The fingerprint's note of what a VideoCLIP tower was given (`Embedder.video_input`): its evaluations
# recorded before, from each span's pooled vector (read as one token by the transformer tower, as one vector
# pooled per --clip-pool by the lite tower, which trained on means of tokens), are scored again.
VIDEO_INPUT_NOTES = {"tokens": "per-second tokens", "token mean": "mean of per-second tokens"}


def _video_inputs(embedder: Embedder) -> dict[str, Any]:
    """The fingerprint's note of a VideoCLIP tower's inputs (`VIDEO_INPUT_NOTES`). A pooled tower's inputs
    never changed, and its recorded evaluations are read back as they were."""
    note = VIDEO_INPUT_NOTES.get(embedder.video_input)
    return {"video_inputs": note} if note else {}


def _released_pooled(embedder: Embedder, path: Path) -> None:
    """Released features are one max-pooled vector per clip (youcook_val.pkl) or video (the MSR-VTT .pth):
    no per-second rows to cut a VideoCLIP tower's input (the tokens, or their mean) from, so such a
    checkpoint is refused before any scoring, a recorded evaluation included (it was of pooled vectors)."""
    if embedder.video_input != "pooled":
        raise InputMismatch(
            f"{path}: released features hold one pooled vector per clip or video, and this checkpoint's video tower "
            f"reads {'the mean of ' if embedder.video_input == 'token mean' else ''}each clip's per-second tokens; "
            "evaluate it on the raw videos (--videos), whose tokens are cut as in training"
        )


def _features_fingerprint(cfg: ExtractFeaturesConfig) -> str:
    return config_hash(cfg.model_dump(mode="json", include={"models", "random_weights", "resnet_weights",
                                                            "resnext_weights", "calibration_seed",
                                                            "short_side_2d", "size_3d", "precision"}))  # fmt: skip


def eval_youcook2(
    setup: Setup,
    annotations: Path | None = None,
    videos_dir: Path | None = None,
    pkl: Path | None = None,
    subset: str = "validation",
) -> EvalResult:
    """YouCook2 text-to-clip retrieval: annotations + raw videos (own features), or youcook_val.pkl."""
    if pkl is not None:
        items = formats.read_youcook_pkl(pkl)
        embedder, ckpt = setup.load()
        _released_pooled(embedder, pkl)
        return record(setup.root, ckpt, "youcook2", subset, str(pkl), setup.fingerprint(pkl=digest_files([pkl])),
                      lambda: score_feature_items(items, embedder))  # fmt: skip
    if annotations is None or videos_dir is None:
        raise ValueError("youcook2 needs the annotations file and the videos folder, or the .pkl")
    segments = formats.read_youcook2(annotations, subset)
    if not segments:
        raise formats.BenchmarkFileError(annotations, f'no videos of subset "{subset}"')
    found, missing = _find(videos_dir, {s.video_id for s in segments}, "YouCook2")
    embedder, ckpt = setup.load()

    def compute() -> Scores:
        scores, feats = _folder_features(setup, "youcook2", found, missing)
        kept, inputs = segment_inputs(segments, feats, embedder)
        if not kept:
            raise NoVideos(f"{videos_dir}: no YouCook2 video could be read")
        retrieval_scores(embedder.text([s.sentence for s in kept]), embedder.video(inputs), scores)
        scores.add("clips_dropped", len(segments) - len(kept), len(segments))
        return scores

    fingerprint = setup.fingerprint(annotations=digest_files([annotations]), subset=subset,
                                    videos=digest_listing(found), features=_features_fingerprint(setup.features),
                                    **_video_inputs(embedder))  # fmt: skip
    return record(setup.root, ckpt, "youcook2", subset, f"{annotations} + {videos_dir}", fingerprint, compute)


def eval_msrvtt(
    setup: Setup, csv_path: Path, features_pth: Path | None = None, videos_dir: Path | None = None
) -> EvalResult:
    """MSR-VTT 1k-A text-to-video retrieval: the JSFusion csv with the release's .pth or raw videos."""
    queries = formats.read_msrvtt_csv(csv_path)
    if features_pth is not None:
        items = formats.read_msrvtt_features(features_pth, queries)
        embedder, ckpt = setup.load()
        _released_pooled(embedder, features_pth)
        fingerprint = setup.fingerprint(csv=digest_files([csv_path]), pth=digest_files([features_pth]),
                                        **_candidates(queries))  # fmt: skip
        return record(setup.root, ckpt, "msrvtt", "1k-A", f"{csv_path} + {features_pth}", fingerprint,
                      lambda: score_feature_items(items, embedder, whole_videos=True))  # fmt: skip
    if videos_dir is None:
        raise ValueError("msrvtt needs the .pth features or the videos folder")
    found, missing = _find(videos_dir, {q.video_id for q in queries}, "MSR-VTT")
    embedder, ckpt = setup.load()

    def compute() -> Scores:
        scores, feats = _folder_features(setup, "msrvtt", found, missing)
        kept = [q for q in queries if q.video_id in feats]
        if not kept:
            raise NoVideos(f"{videos_dir}: no MSR-VTT video could be read")
        firsts, answers = distinct_videos([q.video_id for q in kept])
        video = whole_video_inputs([kept[i].video_id for i in firsts], feats, embedder)
        retrieval_scores(embedder.text([q.sentence for q in kept]), embedder.video(video), scores, answers)
        scores.add("candidates", len(firsts), len(kept))
        scores.add("queries_dropped", len(queries) - len(kept), len(queries))
        return scores

    fingerprint = setup.fingerprint(csv=digest_files([csv_path]), videos=digest_listing(found),
                                    features=_features_fingerprint(setup.features),
                                    **_candidates(queries), **_video_inputs(embedder))  # fmt: skip
    return record(setup.root, ckpt, "msrvtt", "1k-A", f"{csv_path} + {videos_dir}", fingerprint, compute)


def _candidates(queries: list[formats.Query]) -> dict[str, Any]:
    """The fingerprint's note that a file with several sentences a video is scored against each video once:
    its evaluations recorded before, one column per sentence, are scored again. A file of one sentence a
    video (the JSFusion 1k-A) scores the same either way and keeps its records."""
    repeated = len({q.video_id for q in queries}) < len(queries)
    return {"candidates": "distinct videos"} if repeated else {}


def crosstask_videos(
    release: Path, split: str, n_train: int = 30
) -> tuple[dict[str, formats.TaskCard], dict[str, list[str]]]:
    """The primary task cards and, per task, the videos of a split: "test" (the zero-shot protocol:
    validation videos out, `n_train` per task drawn for training with seed 0), "val" or "all"."""
    cards = formats.read_task_cards(release / "tasks_primary.txt")
    videos = formats.read_task_videos(release / "videos.csv")
    val_path = release / "videos_val.csv"
    val = formats.read_task_videos(val_path) if val_path.exists() else {}
    if split == "test":
        chosen = zero_shot_split(videos, val, cards, n_train)
    elif split == "val":
        chosen = {t: v for t, v in val.items() if t in cards}
    elif split == "all":
        chosen = {t: list(dict.fromkeys(videos.get(t, []) + val.get(t, []))) for t in cards}
    else:
        raise ValueError(f"split {split!r}: use one of {', '.join(formats.CROSSTASK_SPLITS)}")
    return cards, {t: v for t, v in chosen.items() if v}


def eval_crosstask(
    setup: Setup,
    release: Path,
    videos_dir: Path,
    split: str = "test",
    n_train: int = 30,
    window_s: float = 5.0,
    chance_draws: int = 5,
) -> EvalResult:
    """CrossTask step localisation recall (per primary task and averaged) on one split."""
    cards, chosen = crosstask_videos(release, split, n_train)
    if not chosen:
        raise formats.BenchmarkFileError(
            release / "videos.csv", f"no videos of primary tasks in split {split!r}"
        )
    annotated: dict[str, dict[str, list[tuple[int, float, float]]]] = {}
    files = []
    for task, vids in chosen.items():
        for vid in vids:
            path = release / "annotations" / f"{task}_{vid}.csv"
            if path.exists():  # the reference, too, counts only annotated videos
                annotated.setdefault(task, {})[vid] = formats.read_step_annotation(
                    path, len(cards[task].steps)
                )
                files.append(path)
    if not annotated:
        raise formats.BenchmarkFileError(
            release / "annotations", f"no annotation files for the {split!r} videos"
        )
    found, missing = _find(videos_dir, {v for per in annotated.values() for v in per}, "CrossTask")
    embedder, ckpt = setup.load()

    def compute() -> Scores:
        scores = Scores()
        feats = _video_features(setup, "crosstask", found, scores)
        out = crosstask_scores(cards, annotated, feats, embedder, window_s, chance_draws)
        out.rows[:0] = scores.rows
        out.add("videos_missing", len(missing), len(found) + len(missing))
        return out

    fingerprint = setup.fingerprint(
        release=digest_files([release / "tasks_primary.txt", release / "videos.csv", *sorted(files)]),
        split=split, n_train=n_train, window_s=window_s, chance_draws=chance_draws,
        videos=digest_listing(found), features=_features_fingerprint(setup.features), **_video_inputs(embedder),
    )  # fmt: skip
    return record(setup.root, ckpt, "crosstask", split, f"{release} + {videos_dir}", fingerprint, compute)


def eval_heldout(setup: Setup, max_clips: int | None = None, seed: int | None = None) -> EvalResult:
    """Retrieval among a seeded random sample of the data root's held-out clips (the run's own split)."""
    model, ckpt, extra = CheckpointEmbedder.load(setup.root, setup.checkpoint, setup.max_words, setup.encode)
    require_pairs_pooled(setup.root, model.pooling, f"checkpoint {ckpt.path}")
    require_same_features(setup.root, extra.get("data"), f"checkpoint {ckpt.path}")
    cfg = extra.get("config", {})
    fraction = float(cfg.get("heldout_fraction", 0.1))
    clips = int(max_clips or cfg.get("eval_max_clips", 5000))
    draw_seed = int(cfg.get("seed", 0) if seed is None else seed)
    shards = pair_shards(setup.root)
    minilm = extra.get("text") == "minilm"
    fac = audio_checkpoint(setup.root)

    def compute() -> Scores:
        pairs = sample_heldout(setup.root, shards, fraction, clips, draw_seed, with_text=minilm)
        if len(pairs) < 2:
            raise NoVideos(f"{setup.root.url}: {len(pairs)} held-out clips in clip_pairs; nothing to rank")
        with torch.no_grad():
            text = (
                model.model.text(torch.from_numpy(pairs.text)).numpy()
                if minilm and pairs.text is not None
                else model.text(pairs.texts)
            )
        video = pairs.video.astype(np.float32)
        if model.video_input != "pooled":
            # A VideoCLIP tower reads the clips' per-second tokens (or their mean), as the run's own held-out
            # recall fed it; a pooled vector scored another input than the training log's.
            video = clip_tokens(setup.root, shards, "heldout", fraction, pairs.video_ids, pairs.spans_ms,
                                model.pooling, mean=model.video_input == "token mean")  # fmt: skip
        scores = retrieval_scores(text, model.video(video))
        scores.add("videos", len(set(pairs.video_ids.tolist())), len(pairs))
        if fac is not None:
            add_audio_scores(setup.root, fac, scores)
        return scores

    markers = list_markers(setup.root, "clip_pairs")
    # Shards with no pairs are left out, as from a run's data hash (tasks/train/prepare.pairs_hash): a
    # re-crawl that added no clip changes no held-out clip, so the evaluation is read back, not redone.
    pairs_now = config_hash({str(m.shard): m.config_hash for m in markers if m.rows_out})
    fingerprint = setup.fingerprint(fraction=fraction, clips=clips, seed=draw_seed, pairs=pairs_now)
    if fac is not None:  # only then: a root without audio keeps its recorded evaluations
        fingerprint.update(audio_fingerprint(setup.root, fac))
    fingerprint.update(_video_inputs(model))
    # What an evaluation recorded while empty shards still counted was fingerprinted with: read back too.
    # Empty audio_features shards left the fingerprint after empty clip_pairs shards did, so a record may
    # carry either change alone or neither.
    pairs_all = config_hash({str(m.shard): m.config_hash for m in markers})
    audio_all = audio_fingerprint(setup.root, fac, count_empty=True) if fac is not None else {}
    earlier: list[dict[str, Any]] = []
    for older in ({**fingerprint, **audio_all}, {**fingerprint, **audio_all, "pairs": pairs_all}):
        if older != fingerprint and older not in earlier:
            earlier.append(older)
    split = f"heldout-{fraction:g}"
    return record(setup.root, ckpt, "heldout", split, f"{setup.root.url} clip_pairs", fingerprint, compute,
                  earlier=earlier)  # fmt: skip
