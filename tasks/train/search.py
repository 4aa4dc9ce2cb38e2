"""Text-to-clip search with a trained checkpoint over every clip pair in the data root."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from storage.layout import DataRoot
from storage.shards import collecting_left_out
from tasks.train.checkpoints import latest_checkpoint, load_state, model_from_state, no_checkpoint_message
from tasks.train.clip_tokens import TOKEN_BATCH, VideoInput, no_frame_rows, tokens_of, video_input
from tasks.train.data import Pairs, load_shard, pair_shards
from tasks.train.pooling import pooling_of
from tasks.train.prepare import no_pairs_message, require_pairs_pooled, require_same_features
from tasks.train.videos import load_videos


class NoCheckpoint(FileNotFoundError):
    """No trained checkpoint in the data root (or for the named run)."""


class NoClipsToSearch(FileNotFoundError):
    """No clip_pairs shard a reader may read (none built, or each one damaged): nothing to rank."""


def search_clips(
    root: DataRoot,
    query: str,
    k: int = 10,
    run_id: str | None = None,
    encode: Callable[[list[str]], np.ndarray] | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """The checkpoint used and the k best clips for `query` (video id, span, caption, score), best first.

    `encode` embeds sentences for the MiniLM text side (the frozen encoder); word-level text sides use
    the checkpoint's own vocabulary.
    """
    path = latest_checkpoint(root, run_id)
    if path is None:
        raise NoCheckpoint(no_checkpoint_message(root, run_id, "--run-id"))
    state = load_state(root, path)
    require_pairs_pooled(root, pooling_of(state["extra"].get("config") or {}), f"checkpoint {path}")
    require_same_features(root, state["extra"].get("data"), f"checkpoint {path}")
    # Without a readable shard the loop below ranks nothing, and the command printed the checkpoint alone.
    with collecting_left_out() as damaged:
        shards = pair_shards(root)
    if not shards:
        also = f" (left out: {damaged[0]})" if damaged else ""
        raise NoClipsToSearch(f"{no_pairs_message(root)}{also}")
    model, vocab = model_from_state(state)
    reads = video_input(model, state["extra"].get("objective"))
    with torch.no_grad():
        if vocab is not None:
            text_in = vocab.encode_batch([query], int(state["extra"].get("max_words", 20)))
        else:
            if encode is None:
                from tasks.train.stage import minilm_encode

                encode = minilm_encode
            text_in = torch.from_numpy(encode([query]))
        q = model.text(text_in)[0]
        best: list[tuple[float, int, dict[str, Any]]] = []
        counter = 0
        for shard in shards:
            # Every clip is a candidate (the held-out fraction 0 keeps all rows in the "train" side).
            pairs = load_shard(root, shard, "train", 0.0, with_text=False)
            for start, video in video_inputs(root, shard, pairs, reads):
                scores = (model.video(video) @ q).tolist()
                for i, score in enumerate(scores, start):
                    counter += 1
                    item = (
                        score,
                        -counter,
                        {
                            "clip_id": pairs.clip_ids[i],
                            "video_id": str(pairs.video_ids[i]),
                            "start_ms": int(pairs.spans_ms[i, 0]),
                            "end_ms": int(pairs.spans_ms[i, 1]),
                            "text": pairs.texts[i],
                            "score": score,
                        },
                    )
                    if len(best) < k:
                        heapq.heappush(best, item)
                    else:
                        heapq.heappushpop(best, item)
    return path, [item[2] for item in sorted(best, reverse=True)]


def video_inputs(
    root: DataRoot, shard: int, pairs: Pairs, reads: VideoInput
) -> Iterator[tuple[int, torch.Tensor]]:
    """What the video tower reads for a shard's clips, a batch at a time, with each batch's first row.

    A pooled tower gets the clips' stored vectors, 4096 a batch. A tower of per-second tokens gets each
    clip's tokens, cut from the shard's frame rows as training and `howto eval heldout` cut them (a pooled
    vector read as one token is an input it never trained on), TOKEN_BATCH clips a batch: a shard's clips
    padded at once would take gigabytes. VideoCLIP's lite tower gets each clip's mean of those tokens, as
    its training windows were averaged (not the stored vectors, pooled per the run's --clip-pool)."""
    if reads == "pooled":
        for start in range(0, len(pairs), 4096):
            yield start, torch.from_numpy(pairs.video[start : start + 4096].astype(np.float32))
        return
    mean = reads == "token mean"
    rows_of = {video.video_id: video.rows for video in load_videos(root, shard, "train", 0.0)}
    missing = set(map(str, pairs.video_ids)) - rows_of.keys()
    if missing:
        raise no_frame_rows(root, f"clips of shard {shard}", list(missing), [shard])
    for start in range(0, len(pairs), TOKEN_BATCH):
        stop = start + TOKEN_BATCH
        yield (
            start,
            torch.from_numpy(
                tokens_of(rows_of, pairs.video_ids[start:stop], pairs.spans_ms[start:stop], mean)
            ),
        )
