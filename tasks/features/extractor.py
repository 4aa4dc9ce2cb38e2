"""Pipelined feature extraction: decoder threads feed a queue, one compute loop encodes the rows.

Two ways to batch. Per video (the CPU default): each video's rows in its own fixed batches, so a video's
features never depend on which other videos were in flight. Across videos (the GPU default): rows of all
videos in flight fill fixed-size batches (tasks/features/batcher.py) that go to the device asynchronously
(models/inflight.py); a GPU needs the big batches, and its kernels give the same rows up to rounding."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from models.cpu_allocator import keep_freed_memory
from models.encoders import Runtime, encode
from models.frame_rows import Rows, concat_rows
from models.inflight import InflightEncoder, pad_rows
from tasks.features.batcher import Batch, CrossVideoBatcher
from tasks.features.decode import (
    CLIP_FRAMES,
    DecodeError,
    DecodeReport,
    DecodeTimeout,
    StreamSpec,
    VideoInfo,
    as_clips,
    check_frame_size,
    decode_outputs,
    probe_with,
)
from tasks.interrupts import ItemInterrupted
from tasks.queues import put_unless_stopped
from tasks.run_threads import start_thread

log = logging.getLogger(__name__)

MODEL_2D = "resnet152"
MODEL_3D = "resnext101"
# GPU batch defaults: big enough that an H100-class GPU is not starved by thin batches, small enough that
# padding a video's tail batch stays cheap. Not yet measured on a GPU (no device was lent to this project):
# tune with `howto bench features --device cuda --batch-2d N --batch-3d N`.
GPU_BATCH_2D = 64
GPU_BATCH_3D = 64
# A video whose decoder a stop signal (Ctrl-C, SIGTERM) ended: no verdict on the file, nothing to record.
INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class VideoJob:
    """One video to featurise."""

    video_id: str
    path: str


@dataclass
class ModelRows:
    """One model's rows for one video: L2-normalised float32 vectors and their time spans."""

    vectors: np.ndarray
    t_start_ms: np.ndarray
    t_end_ms: np.ndarray


@dataclass
class VideoResult:
    """Everything one video produced: rows per model, or a status and ffmpeg's message."""

    video_id: str
    status: str  # "ok" | "failed" (corrupt: permanent) | "error" (timeout: retry) | INTERRUPTED (stopped)
    error: str | None = None
    duration_s: float = 0.0
    rows: dict[str, ModelRows] = field(default_factory=dict)
    decoder: str = "cpu"  # which decoder really ran: "cpu", or the hardware one ("cuda", "cuda:1")
    decoder_fallback: str | None = None  # why not the hardware one asked for (ffmpeg's words)
    # Its probe or decode was given up past the time budget (an error row). In process (PyAV) the
    # decoding thread may still be stuck in the libraries: the crash guard decodes its retries in a child.
    abandoned: bool = False


@dataclass
class _Pending:
    info: VideoInfo | None = None
    pieces: dict[str, list[tuple[int, np.ndarray]]] = field(default_factory=dict)
    queued: dict[str, list[Rows]] = field(default_factory=dict)  # decoded, not yet encoded
    next_row: dict[str, int] = field(default_factory=dict)  # the first queued row's index
    rows_expected: dict[str, int] = field(default_factory=dict)
    frames_3d: int = 0
    ended: bool = False
    status: str = "ok"
    error: str | None = None
    abandoned: bool = False
    decoder: DecodeReport = field(default_factory=DecodeReport)


@dataclass(frozen=True)
class ExtractorSettings:
    """Batch sizes, decoder threads, queue depth and the decode time budget (base + per video second).

    A batch holds one video's rows [k * batch, (k + 1) * batch), the last one what is left. Batching across
    videos made a batch's size and make-up depend on decode timing; oneDNN picks kernels (and so the order
    of bf16 roundings) by shape and CPU, and promises no batch invariance. Measured on an AVX-512-bf16 CPU
    the packed path happened to be batch-invariant (bit-identical rows, demo sizes, 2D batches of 1 to 16,
    3D of 1 to 48), but per-video batches make "the same video gives the same bits, whatever else was in
    flight" hold by construction, on every CPU, so a resumed run matches an uninterrupted one. Only a
    video's last batch is partial.

    Batches as measured on a 2-core AVX-512-bf16 CPU, packed bf16, share of the matmul ceiling: 2D 8 ->
    ~70%, 16 -> ~90-105%, 32 -> ~95-100%; 3D 8 -> ~55%, 16 -> ~62-72%, 32 -> ~71-79% (3D's later stages
    have few positions per clip, so small batches make thin matmuls). The worker stays well under 4 GB.
    Since ResNeXt-101's front half runs two clips at a time (models/packed.py), 3D batches of 16 to 64 clips
    ran within noise of each other (bf16 56-61 ms per clip, AVX2 fp32 123-135), so 32 was kept.

    across_videos: fill each batch from all videos in flight instead (the GPU path; see the module doc),
    with up to `inflight` batches on the device and, with `pad_batches`, every batch padded to full size
    (one CUDA graph per shape). hwaccel: the hardware decoder ("cuda"), CPU decoding as fallback. decoder:
    "ffmpeg" (the command line) or "pyav" (FFmpeg's libraries in process), the same frames either way.
    """

    batch_2d: int = 16
    batch_3d: int = 32
    decode_workers: int = 2
    queue_chunks: int = 24
    timeout_base_s: float = 30.0
    timeout_per_video_s: float = 0.5
    across_videos: bool = False
    inflight: int = 3
    pad_batches: bool = False
    hwaccel: str | None = None
    decoder: str = "ffmpeg"

    def batch_size(self, model: str) -> int:
        return self.batch_3d if model == MODEL_3D else self.batch_2d


class Extractor:
    """Run 2D and/or 3D encoders over many videos with decoding overlapped with compute."""

    def __init__(
        self,
        encoders: dict[str, nn.Module],
        specs: dict[str, StreamSpec],
        rt: Runtime,
        settings: ExtractorSettings | None = None,
    ) -> None:
        if MODEL_3D in specs and specs[MODEL_3D].chunk % CLIP_FRAMES:
            raise ValueError(
                f"3D chunks must hold whole {CLIP_FRAMES}-frame clips, not {specs[MODEL_3D].chunk} frames"
            )
        self.encoders, self.specs, self.rt = encoders, specs, rt
        if rt.device.type == "cpu":
            keep_freed_memory()  # each batch's activations reuse mapped memory (models/cpu_allocator.py)
        self.settings = s = settings or ExtractorSettings()
        self.batcher = CrossVideoBatcher({m: s.batch_size(m) for m in specs})
        # Across videos only: the device-side queue of batches (per-video batches are encoded in place).
        self.devices = {
            m: InflightEncoder(net, rt, s.inflight, s.batch_size(m) if s.pad_batches else None)
            for m, net in (encoders.items() if s.across_videos else ())
        }
        self.mixed_batches = 0  # across videos: batches that held rows of more than one video
        # Called as each decoded chunk reaches the compute side: (video id, model, rows of it so far).
        # One long video's extraction (`howto features extract`) shows its progress through this.
        self.on_chunk: Callable[[str, str, int], None] | None = None

    def run(self, jobs: Iterable[VideoJob]) -> Iterator[VideoResult]:
        """Yield one VideoResult per job, in completion order."""
        s = self.settings
        todo: queue.Queue[VideoJob | None] = queue.Queue(maxsize=2 * max(1, s.decode_workers))
        workers = max(1, s.decode_workers)
        # Jobs are pulled lazily by a feeder thread: the caller's iterator may download as we compute.
        feed_failed: list[BaseException] = []
        # In the run's context, so the downloads' and decoders' lines reach the run's logs (tasks/run_threads.py).
        start_thread(_feed, jobs, todo, workers, feed_failed)
        out: queue.Queue[tuple[Any, ...]] = queue.Queue(maxsize=s.queue_chunks)
        stop = threading.Event()
        threads = [start_thread(self._decode_worker, todo, out, stop) for _ in range(workers)]
        try:
            yield from self._compute_loop(out, workers)
            if feed_failed:
                # The jobs did not end, they broke: the caller must not take the results so far for all.
                raise feed_failed[0]
        finally:
            stop.set()
            deadline = time.monotonic() + 10  # workers exit at their next put; never wait forever
            while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
                try:
                    out.get(timeout=0.1)
                except queue.Empty:
                    pass
            if s.decoder == "pyav-child":
                # Its decoding children wait for the next video once the run is over: end the idle ones.
                from tasks.features.decode_child import stop_children

                stop_children()

    # -- decoding side (threads) -------------------------------------------------------------
    def _decode_worker(
        self, todo: queue.Queue[VideoJob | None], out: queue.Queue[tuple[Any, ...]], stop: threading.Event
    ) -> None:
        def put(msg: tuple[Any, ...]) -> None:
            put_unless_stopped(out, msg, stop)

        while not stop.is_set():
            job = todo.get()
            if job is None:
                put(("worker_done",))
                return
            try:
                self._decode_video(job, put)
            except ItemInterrupted as exc:  # handed to the caller, who decides (nothing to record)
                put(("fail", job.video_id, INTERRUPTED, str(exc), False))
            except DecodeTimeout as exc:
                put(("fail", job.video_id, "error", str(exc), True))
            except DecodeError as exc:
                put(("fail", job.video_id, "failed", str(exc), False))
            except Exception as exc:  # noqa: BLE001 - one bad file must not take the shard down
                log.exception("decoding %s failed", job.path)
                put(("fail", job.video_id, "error", f"{type(exc).__name__}: {exc}", False))
            put(("end", job.video_id))

    def _decode_video(self, job: VideoJob, put: Any) -> None:
        s = self.settings
        info = probe_with(s.decoder, job.path, timeout_s=s.timeout_base_s)
        check_frame_size(info)  # before any frame: a 2000x2 file's frames were 150 MB each
        timeout = s.timeout_base_s + s.timeout_per_video_s * info.duration_s
        put(("start", job.video_id, info))
        rows = dict.fromkeys(self.specs, 0)
        frames_3d = 0
        report = DecodeReport()

        def restart(reason: str) -> None:
            """The hardware decoder failed mid-stream: the compute side drops the video's rows so far, and
            the CPU's decode starts again at row 0."""
            nonlocal frames_3d
            put(("restart", job.video_id, reason))
            rows.update(dict.fromkeys(self.specs, 0))
            frames_3d = 0

        # One decode feeds both models; their chunks interleave, each model's in order.
        for model, chunk in decode_outputs(
            job.path, self.specs, info, timeout, s.hwaccel, report, restart, s.decoder
        ):
            if model == MODEL_3D:
                frames_3d += len(chunk)
                chunk = as_clips(chunk)  # chunks hold whole clips but the last, zero-padded
            put(("chunk", job.video_id, model, rows[model], chunk))
            rows[model] += len(chunk)
        put(("decoder", job.video_id, report))
        for model in self.specs:
            put(("rows", job.video_id, model, rows[model], frames_3d if model == MODEL_3D else rows[model]))

    # -- compute side (caller's thread) ------------------------------------------------------
    def _compute_loop(self, out: queue.Queue[tuple[Any, ...]], workers: int) -> Iterator[VideoResult]:
        pending: dict[str, _Pending] = {}
        across = self.settings.across_videos
        done_workers = 0
        while done_workers < workers:
            if across:
                self._land(pending, wait=False)
            try:
                msg = out.get_nowait()
            except queue.Empty:
                if across and not any(d.busy for d in self.devices.values()):
                    # Nothing arriving and the device idle: encode the partial batches rather than wait.
                    self._encode_batches(pending, self.batcher.flush())
                    self._land(pending, wait=False)
                yield from self._finished(pending)
                try:
                    msg = out.get(timeout=0.2)
                except queue.Empty:
                    continue
            kind = msg[0]
            if kind == "worker_done":
                done_workers += 1
            elif kind == "start":
                pending.setdefault(msg[1], _Pending()).info = msg[2]
            elif kind == "chunk":
                _, vid, model, idx, arr = msg  # one decoder per video: its chunks arrive in order
                p = pending.setdefault(vid, _Pending())
                if self.on_chunk is not None:
                    self.on_chunk(vid, model, idx + len(arr))
                if p.status == "ok" and across:
                    self.batcher.add(vid, model, idx, arr)
                    self._encode_batches(pending, self.batcher.full())
                elif p.status == "ok":
                    p.queued.setdefault(model, []).append(arr)
                    self._encode_queued(p, model, final=False)
            elif kind == "rows":
                _, vid, model, n_rows, frames = msg
                p = pending.setdefault(vid, _Pending())
                p.rows_expected[model] = n_rows
                if model == MODEL_3D:
                    p.frames_3d = frames
                if p.status == "ok" and not across:
                    self._encode_queued(p, model, final=True)  # the model's last, partial batch
            elif kind == "fail":
                p = pending.setdefault(msg[1], _Pending())
                p.status, p.error, p.abandoned = msg[2], msg[3], msg[4]
                p.queued.clear()  # a failed video is reported without rows: drop what waits
                self.batcher.drop(msg[1])
            elif kind == "restart":
                self._forget_rows(pending, msg[1])
            elif kind == "decoder":
                pending.setdefault(msg[1], _Pending()).decoder = msg[2]
            elif kind == "end":
                pending.setdefault(msg[1], _Pending()).ended = True
            yield from self._finished(pending)
        if across:
            self._encode_batches(pending, self.batcher.flush())
            self._land(pending, wait=True)
        yield from self._finished(pending)

    def _forget_rows(self, pending: dict[str, _Pending], vid: str) -> None:
        """Drop every row of `vid` decoded so far, waiting, batched or encoded: its decode starts again."""
        p = pending.setdefault(vid, _Pending())
        self.batcher.drop(vid)
        if self.settings.across_videos:
            self._land(pending, wait=True)  # batches on the device may hold its rows: land them, then drop
        p.pieces.clear()
        p.queued.clear()
        p.next_row.clear()

    def _encode_batches(self, pending: dict[str, _Pending], batches: Iterator[Batch]) -> None:
        for batch in batches:
            self.mixed_batches += len({span.video_id for span in batch.spans}) > 1
            self.devices[batch.model].submit(batch.rows, batch)

    def _land(self, pending: dict[str, _Pending], wait: bool) -> None:
        """Hand finished device batches back to their videos (rows of a video that failed meanwhile go)."""
        for device in self.devices.values():
            for batch, vectors in device.done(wait):
                for span, rows in batch.split(vectors):
                    p = pending.get(span.video_id)
                    if p is not None and p.status == "ok":
                        p.pieces.setdefault(batch.model, []).append((span.first_row, rows))

    def _encode_queued(self, p: _Pending, model: str, final: bool) -> None:
        """Encode the video's queued rows of `model` in whole batches; with `final`, the rest too."""
        limit = self.settings.batch_size(model)
        queued = p.queued.get(model, [])
        total = sum(len(a) for a in queued)
        if total < limit and not (final and total):
            return
        rows = concat_rows(queued)
        start = 0
        while len(rows) - start >= limit or (final and start < len(rows)):
            batch = rows[start : start + limit]
            first = p.next_row.get(model, 0)
            if self.settings.pad_batches:  # compiled on CUDA: the tail too in the batch's one shape
                vectors = encode(self.encoders[model], pad_rows(batch, limit), self.rt)[: len(batch)]
            else:
                vectors = encode(self.encoders[model], batch, self.rt)
            p.pieces.setdefault(model, []).append((first, vectors))
            p.next_row[model] = first + len(batch)
            start += len(batch)
        p.queued[model] = [rows[start:]] if start < len(rows) else []

    def _finished(self, pending: dict[str, _Pending]) -> Iterator[VideoResult]:
        for vid in [v for v, p in pending.items() if p.ended]:
            p = pending[vid]
            if p.status == "ok":
                got = {m: sum(len(v) for _, v in p.pieces.get(m, [])) for m in self.specs}
                if any(m not in p.rows_expected or got[m] < p.rows_expected[m] for m in self.specs):
                    continue  # some rows still wait in a buffer
            del pending[vid]
            yield self._result(vid, p)

    def _result(self, vid: str, p: _Pending) -> VideoResult:
        duration = p.info.duration_s if p.info else 0.0
        if p.status != "ok":
            return VideoResult(vid, p.status, p.error, duration, abandoned=p.abandoned)
        end_s = p.info.rows_end_s() if p.info else 0.0
        rows: dict[str, ModelRows] = {}
        for model, spec in self.specs.items():
            pieces = sorted(p.pieces.get(model, []), key=lambda x: x[0])
            vectors = np.concatenate([v for _, v in pieces]) if pieces else np.zeros((0, 2048), np.float32)
            rows[model] = ModelRows(vectors, *_spans(model, spec, len(vectors), p.frames_3d, end_s))
        return VideoResult(vid, "ok", None, duration, rows, p.decoder.decoder, p.decoder.fallback)


def _feed(
    jobs: Iterable[VideoJob], todo: queue.Queue[VideoJob | None], workers: int, failed: list[BaseException]
) -> None:
    """Hand the jobs to the decoders, then one end mark per decoder; an exception from the jobs iterator
    is kept in `failed` for `run` to raise (in this thread it would only be printed, and the shard written
    without the videos after it)."""
    try:
        for job in jobs:
            todo.put(job)
    except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, raised there
        failed.append(exc)
    finally:
        for _ in range(workers):
            todo.put(None)


def _spans(model: str, spec: StreamSpec, n: int, frames: int, end_s: float) -> tuple[np.ndarray, ...]:
    """Row time spans in ms: 2D row k covers [k, k+1) s, the last up to the picture's end `end_s` on the rows'
    clock (VideoInfo.rows_end_s); 3D row k its 16 frames at 24 fps."""
    k = np.arange(n, dtype=np.int64)
    if model == MODEL_3D:
        start = np.round(k * CLIP_FRAMES * 1000 / spec.fps).astype(np.int64)
        end = np.round(np.minimum((k + 1) * CLIP_FRAMES, frames) * 1000 / spec.fps).astype(np.int64)
        return start, end
    start = np.round(k * 1000 / spec.fps).astype(np.int64)
    end = np.minimum(np.round((k + 1) * 1000 / spec.fps), max(round(end_s * 1000), 0)).astype(np.int64)
    return start, np.maximum(end, start + 1)
