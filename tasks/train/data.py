"""Training data from the data root: clip pairs per shard, split by video, batches grouped by video."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from models.encoders import usable_cores
from models.train_loop import Batch, staged_for
from storage.layout import DataRoot
from storage.shards import read_shard, verified_markers
from tasks.queues import put_unless_stopped
from tasks.train.prepare import text_cache
from tasks.train.split import heldout_mask


@dataclass
class Pairs:
    """Clip pairs of one or more shards as arrays (video vectors stay fp16 until batched)."""

    clip_ids: list[str]
    video_ids: np.ndarray  # object array of str
    idx: np.ndarray  # int64 clip order within its video
    spans_ms: np.ndarray  # (n, 2) int64
    texts: list[str]
    video: np.ndarray  # (n, d_video) float16
    text: np.ndarray | None  # (n, d_sentence) float32 cached sentence embeddings, or None

    def __len__(self) -> int:
        return len(self.clip_ids)

    def take(self, rows: np.ndarray) -> Pairs:
        return Pairs(
            [self.clip_ids[i] for i in rows],
            self.video_ids[rows],
            self.idx[rows],
            self.spans_ms[rows],
            [self.texts[i] for i in rows],
            self.video[rows],
            None if self.text is None else self.text[rows],
        )

    @staticmethod
    def concat(parts: Sequence[Pairs], d_video: int = 4096) -> Pairs:
        # An empty shard (a re-crawl's re-check shard when nothing vanished) has vectors of no width, (0, 0):
        # it adds nothing, and joined with the others its width would not match theirs.
        parts = [p for p in parts if len(p)]
        if not parts:
            return Pairs(
                [],
                np.array([], dtype=object),
                np.zeros(0, np.int64),
                np.zeros((0, 2), np.int64),
                [],
                np.zeros((0, d_video), np.float16),
                None,
            )
        if len(parts) == 1:
            return parts[0]  # nothing to join: a window of one shard is that shard's arrays, not a copy
        has_text = all(p.text is not None for p in parts)
        return Pairs(
            [c for p in parts for c in p.clip_ids],
            np.concatenate([p.video_ids for p in parts]),
            np.concatenate([p.idx for p in parts]),
            np.concatenate([p.spans_ms for p in parts]),
            [t for p in parts for t in p.texts],
            np.concatenate([p.video for p in parts]),
            np.concatenate([p.text for p in parts if p.text is not None]) if has_text else None,
        )


def vectors_to_numpy(
    column: pa.ChunkedArray | pa.Array, dtype: type = np.float16, keep: np.ndarray | None = None
) -> np.ndarray:
    """A list<float> column of equal-length vectors as an (n, dim) array without Python loops; with
    `keep` (a boolean mask over the column's rows), only the rows it keeps.

    Each chunk's values (of the kept rows) are copied once, straight into the result (cast there if
    `dtype` differs). Joining the chunks first (Arrow's combine_chunks) copied them twice, the first time
    into Arrow's own allocator, whose fresh pages fault one at a time where the result's come from the heap
    the trainer keeps (models/cpu_allocator.py), and selecting the rows afterwards copied them a third
    time. An 8192 x 4096 float16 shard's vectors: 13 against 17 ms, and a part of the faster loading
    measured in tasks/train/run.py `Trainer.pair_windows`."""
    chunks = [c for c in (column.chunks if isinstance(column, pa.ChunkedArray) else [column]) if len(c)]
    if not chunks:
        return np.zeros((0, 0), dtype=dtype)
    dim = int(pc.list_value_length(chunks[0])[0].as_py())
    rows = sum(len(c) for c in chunks)
    if keep is not None and len(keep) != rows:
        raise ValueError(f"a mask of {len(keep)} rows for {rows} vectors")
    out = np.empty((rows if keep is None else int(np.count_nonzero(keep)), dim), dtype=dtype)
    start = written = 0
    for chunk in chunks:
        values = chunk.flatten()  # the chunk's own values, its offset applied (no copy)
        if len(values) != len(chunk) * dim:
            raise ValueError(f"vectors of unequal length: expected {dim} values a row")
        vectors = values.to_numpy(zero_copy_only=False).reshape(-1, dim)
        if keep is not None:
            vectors = vectors[keep[start : start + len(chunk)]]  # one chunk's rows: a cache-sized copy
        out[written : written + len(vectors)] = vectors
        start += len(chunk)
        written += len(vectors)
    return out


def pair_shards(root: DataRoot) -> list[int]:
    """Shards of `clip_pairs` that are finished and whose file checks out against its marker, in order.

    A damaged shard (cut short, replaced) is logged and left out, as the catalog leaves it out: training,
    search and evaluation never read a file no marker vouches for.
    """
    return [m.shard for m in verified_markers(root, "clip_pairs")]


def load_shard(root: DataRoot, shard: int, split: str, heldout_fraction: float, with_text: bool) -> Pairs:
    """One `clip_pairs` shard's train or held-out rows, joined with cached text embeddings if asked."""
    table = read_shard(root, "clip_pairs", shard)
    if table is None:
        return Pairs.concat([])
    held = heldout_mask(table.column("video_id"), heldout_fraction)
    keep = held if split == "heldout" else ~held
    every_clip = table.column("clip_id")
    # The vectors are taken out before the filter, their rows selected as they are copied out of Arrow:
    # arrow's filter of a list column rebuilds it value by value (about 30 ms a 4096-row shard).
    video = vectors_to_numpy(table.column("vector"), keep=None if keep.all() else keep)
    if not keep.all():
        table = table.drop_columns(["vector"]).filter(pa.array(keep))
    text = None
    if with_text:
        cached = text_cache(root, shard)
        if cached is None:
            raise FileNotFoundError(
                f"text_embeddings shard {shard} is missing or was made from other clip_pairs: run the text "
                "cache first (howto train --text minilm)"
            )
        text = _text_rows(cached, every_clip, keep, table.column("clip_id"), shard)
    return Pairs(
        table.column("clip_id").to_pylist(),
        np.asarray(table.column("video_id").to_pylist(), dtype=object),
        table.column("idx").to_numpy().astype(np.int64),
        np.stack([table.column("start_ms").to_numpy(), table.column("end_ms").to_numpy()], axis=1),
        table.column("text").to_pylist(),
        video,
        text,
    )


def _text_rows(
    cached: pa.Table, every_clip: pa.ChunkedArray, keep: np.ndarray, kept_clips: pa.ChunkedArray, shard: int
) -> np.ndarray:
    """The cached text vectors of the kept rows, in their order, as an (n, d) float32 array.

    The text cache is written in the pairs' order: then its vectors are selected with the rows' mask, as
    the video's are, where Arrow's take rebuilds a list column value by value (about 10 ms an 8192-row
    shard). Otherwise each kept clip is looked up by its id."""
    if cached.column("clip_id").equals(every_clip):
        return vectors_to_numpy(cached.column("vector"), np.float32, keep=None if keep.all() else keep)
    lookup = {c: i for i, c in enumerate(cached.column("clip_id").to_pylist())}
    order = [lookup.get(c, -1) for c in kept_clips.to_pylist()]
    if min(order, default=0) < 0:
        raise KeyError(f"text_embeddings shard {shard} lacks some clips of clip_pairs shard {shard}")
    return vectors_to_numpy(cached.column("vector").take(pa.array(order, pa.int64())), np.float32)


def group_batches(
    video_ids: np.ndarray,
    rng: np.random.Generator,
    videos_per_batch: int,
    clips_per_video: int,
    drop_last: bool = False,
) -> list[np.ndarray]:
    """Row indices of batches of `videos_per_batch` videos with up to `clips_per_video` clips each.

    Every video appears once per pass (HowTo100M samples clips per video), so same-video negatives
    are always in the batch with their positives. `drop_last` leaves out a last batch of fewer videos.
    """
    if len(video_ids) == 0:
        return []
    order = np.argsort(video_ids, kind="stable")
    sorted_ids = video_ids[order]
    bounds = np.flatnonzero(sorted_ids[1:] != sorted_ids[:-1]) + 1
    groups = np.split(order, bounds)
    rng.shuffle(groups)  # type: ignore[arg-type]
    batches = []
    stop = len(groups) - len(groups) % videos_per_batch if drop_last else len(groups)
    for start in range(0, stop, videos_per_batch):
        chosen = []
        for rows in groups[start : start + videos_per_batch]:
            if len(rows) > clips_per_video:
                rows = np.sort(rng.choice(rows, clips_per_video, replace=False))
            chosen.append(rows)
        batches.append(np.concatenate(chosen))
    return batches


def make_batch(pairs: Pairs, rows: np.ndarray, text_of: Callable[[Pairs, np.ndarray], torch.Tensor]) -> Batch:
    """Tensors of the given rows; `groups` numbers the batch's videos, `order` is the clip index."""
    _, groups = np.unique(pairs.video_ids[rows], return_inverse=True)
    return Batch(
        torch.from_numpy(pairs.video[rows]),  # float16 as stored: see models.train_loop.staged_for
        text_of(pairs, rows),
        torch.from_numpy(groups.astype(np.int64)),
        torch.from_numpy(pairs.idx[rows]),
    )


def loads_beside_steps(device: torch.device) -> bool:
    """Whether batches are built in a thread beside the steps: yes for a GPU, whose steps leave the CPU
    free; for a CPU only where torch's threads leave a core over.

    A CPU step splits each kernel evenly over torch's threads (OpenMP, static), so a loader that takes
    part of one core makes every kernel wait for that thread: the loader's CPU time is paid in full in
    step time, and the loader itself, starved by threads that use every core, falls behind. Measured on 2
    Xeon cores, bf16 at d=4096, Parquet decoded on both cores (row groups of 16 MiB, storage/shards.py):
    `howto bench train --steps 12`, three runs interleaved, 0.69 s a step with a loader thread, 0.66 s
    built between steps; epochs of 8 batches that each start with the shards' read (steps of 0.62 s with
    the batches in memory), 0.81 s with a loader thread, the trainer still waiting 0.15 s a step for
    batches, and 0.70 s between steps."""
    return device.type != "cpu" or torch.get_num_threads() < usable_cores()


def prefetch(items: Iterator[Batch], device: torch.device, depth: int = 2) -> Iterator[Batch]:
    """Batches staged for `device` (models.train_loop.staged_for: page-locked for a GPU, as built for a
    CPU), built in a background thread so the next one is ready when a step finishes where
    `loads_beside_steps` says that pays, and in the caller's thread between steps elsewhere."""
    if not loads_beside_steps(device):
        yield from (staged_for(item, device) for item in items)
        return
    box: queue.Queue[object] = queue.Queue(maxsize=depth)
    done = object()
    # Set when the consumer stops early (an error in a step, the epoch abandoned): the loader then stops
    # too, instead of waiting on a full queue for good with its page-locked batches held.
    stop = threading.Event()

    def put(item: object) -> None:
        put_unless_stopped(box, item, stop)

    def work() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                put(staged_for(item, device))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, re-raised there
            put(exc)
        put(done)

    loader = threading.Thread(target=work, daemon=True, name="batch loader")
    loader.start()
    try:
        while (item := box.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
