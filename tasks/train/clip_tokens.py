"""Per-second token inputs of given clips (VideoCLIP's towers': the tokens, or their mean for the lite one),
one shard's videos at a time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from models.embedding import JointEmbedding
from models.video_tokens import TokenVideoEncoder
from storage.layout import DataRoot
from storage.schemas import get_schema
from tasks.train.batches import pad_sequences
from tasks.train.pooling import REFERENCE_POOLING, ClipPooling
from tasks.train.second_tokens import clip_seconds, second_tokens, span_tokens, token_mean, token_widths
from tasks.train.videos import load_videos

# Clips a tower of per-second tokens embeds at a time: 256 clips x 32 s x 4096 float32 = 128 MiB (and the
# tower's float32 temporaries of as many), where a shard's clips at once (HowTo100M's shards hold tens of
# thousands) or a benchmark's (YouCook2's 3,350 clips: 1.8 GB) take gigabytes.
TOKEN_BATCH = 256


# What a run's video tower trained on, so that every evaluation gives it the same: each clip's vector as
# clip_pairs pooled it (the run's --clip-pool), the clip's per-second tokens (VideoCLIP's transformer
# tower), or their mean (VideoCLIP's lite tower: a gated unit on the mean of each window's tokens).
VideoInput = Literal["pooled", "tokens", "token mean"]


def reads_tokens(model: JointEmbedding) -> bool:
    """Whether the model's video tower reads per-second tokens (VideoCLIP's transformer tower): it trained
    on windows of them, never on pooled vectors."""
    return isinstance(model.video, TokenVideoEncoder)


def video_input(model: JointEmbedding, objective: str | None) -> VideoInput:
    """What the video tower of a run of `objective` (its checkpoint's record) reads. A videoclip run's lite
    tower trained on the mean of each window's per-second tokens, never on clip_pairs' pooled vectors (max
    over the line's own rows by default): given those, it was scored on inputs of another distribution."""
    if reads_tokens(model):
        return "tokens"
    return "token mean" if objective == "videoclip" else "pooled"


class NoFrameRows(LookupError):
    """Clips whose video has no frame rows in the shards read (the message names some)."""


def no_frame_rows(root: DataRoot, which: str, missing: Sequence[str], shards: Sequence[int]) -> NoFrameRows:
    """The error for `which` clips (e.g. "heldout clips") of videos without frame rows in `shards`, naming a
    few, and what makes their rows again: a frame_features shard that is gone (deleted, or its file lost) is
    the features stage's to make again (rebuilding the pairs alone finds no rows in it); one made again
    without those videos leaves the pairs out of date, which `howto train` rebuilds."""
    some = sorted(missing)
    version = get_schema("frame_features").version
    gone = [str(s) for s in shards if not root.exists(root.shard_path("frame_features", version, s))]
    fix = (
        f"frame_features shard(s) {', '.join(gone)} gone: make them again (howto features run, or howto "
        "pipeline --stage features), then howto train rebuilds the pairs from them"
        if gone
        else "their frame_features shard was made again without them: rebuild the pairs (howto train)"
    )
    return NoFrameRows(
        f"{root.url}: no frame rows for {len(some)} video(s) of the {which} in clip_pairs' shards "
        f"(e.g. {', '.join(some[:3])}): {fix}"
    )


def padded_tokens(seqs: list[np.ndarray]) -> np.ndarray:
    """(n, T, d_video) float16 zero-padded tokens, T the longest sequence's. Tokens are float16 values to
    begin with (`second_tokens`): half float32's memory for the same numbers, the tower's input cast back
    to float32 a batch at a time."""
    if not seqs:
        return np.zeros((0, 1, 0), np.float16)
    return pad_sequences(seqs, max(len(s) for s in seqs), np.float16)[0]


def token_inputs(seqs: list[np.ndarray], widths: Sequence[int], mean: bool = False) -> np.ndarray:
    """What a tower of tokens reads for clips' token sequences: `padded_tokens`, or with `mean` each clip's
    `token_mean` ((n, d_video) float32), as VideoCLIP's lite tower's training windows are averaged."""
    if not mean:
        return padded_tokens(seqs)
    if not seqs:
        return np.zeros((0, sum(widths)), np.float32)
    return np.stack([token_mean(seq, widths) for seq in seqs])


def tokens_of(
    rows_of: Mapping[str, Mapping[str, np.ndarray]],
    video_ids: Sequence[str] | np.ndarray,
    spans_ms: np.ndarray,
    mean: bool = False,
) -> np.ndarray:
    """`token_inputs` of clips (video id, span in ms) of videos whose feature rows are given. Each video's
    per-second tokens are cut here and dropped after, so memory follows the clips asked, not the videos
    whose rows are held (a whole shard's, for search-clips)."""
    tokens = {vid: second_tokens(rows_of[vid]) for vid in dict.fromkeys(str(v) for v in video_ids)}
    seqs = [
        span_tokens(tokens[str(v)], *clip_seconds(*span), dtype=np.float16)
        for v, span in zip(video_ids, spans_ms, strict=True)
    ]
    widths = token_widths(next(iter(rows_of.values()))) if rows_of else ()
    return token_inputs(seqs, widths, mean)


def clip_tokens(
    root: DataRoot,
    shards: Sequence[int],
    split: str,
    heldout_fraction: float,
    video_ids: Sequence[str] | np.ndarray,
    spans_ms: np.ndarray,
    pooling: ClipPooling = REFERENCE_POOLING,
    mean: bool = False,
) -> np.ndarray:
    """(n, T, d_video) float16 zero-padded per-second tokens (`padded_tokens`) of each clip's seconds
    [floor(start), ceil(end)), T the longest clip's, as the tower trained on its windows; with `mean`,
    each clip's mean of them ((n, d_video), `token_inputs`), as the lite tower trained on its windows'.

    A shard's videos are read one shard at a time, and only those of the given clips: the trainer's
    held-out sample is a few thousand clips, while every held-out video's frame rows at once (as they
    were read) grow with the dataset, some 10% of HowTo100M's 1.2M videos at about 10 KB a second."""
    where: dict[str, list[int]] = {}
    for i, vid in enumerate(video_ids):
        where.setdefault(str(vid), []).append(i)
    seqs: list[np.ndarray] = [np.zeros((0, 0), np.float16)] * len(video_ids)
    widths: tuple[int, ...] = ()
    for shard in shards:
        if not where:
            break
        for video in load_videos(root, shard, split, heldout_fraction, pooling=pooling, only=set(where)):
            widths = token_widths(video.rows)
            for i in where.pop(video.video_id, []):
                seqs[i] = span_tokens(video.tokens(), *clip_seconds(*spans_ms[i]), dtype=np.float16)
    if where:
        raise no_frame_rows(root, f"{split} clips", list(where), shards)
    return token_inputs(seqs, widths, mean)
