"""`howto bench captions`: caption files cleaned per CPU-second (parse + clean + clips + Parquet write)."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import webvtt

from storage.schemas import get_schema
from tasks.captions.config import FetchCaptionsConfig
from tasks.captions.rows import process_track
from tasks.synthetic.captions import rolling_vtt

_VOCAB = (
    "now take the flour and whisk it slowly into bowl until smooth then add some milk butter eggs sugar "
    "salt heat pan over medium flip pancake when bubbles form on top cook other side golden brown you "
    "want to make sure it does not burn so keep an eye this is really important step"
).split()


def generated_track(minutes: float, seed: int = 0, word_ms: int = 350) -> str:
    """A rolling auto track of about `minutes` of speech, 5-9 words per line (as YouTube's ASR)."""
    rng = random.Random(seed)
    lines, spoken_ms = [], 0
    while spoken_ms < minutes * 60_000:
        n = rng.randint(5, 9)
        lines.append(" ".join(rng.choice(_VOCAB) for _ in range(n)))
        spoken_ms += n * word_ms + 10
    return rolling_vtt(lines, word_ms=word_ms)


def _full(data: bytes, out: Path, cfg: FetchCaptionsConfig) -> int:
    """What the stage does per video: parse, clean, rule, clips, write the clips as Parquet."""
    video = {
        "video_id": "AAAAAAAAAAA",
        "task_id": "t",
        "caption_lang": "en",
        "caption_kind": "auto",
        "crawl_id": "bench",
    }
    _, clips = process_track(video, data, cfg, vtt_path="vtt/x.en.vtt", category="c")
    pq.write_table(pa.Table.from_pylist(clips, schema=get_schema("clips").schema), out, compression="zstd")
    return len(clips)


def _naive(data: bytes, out: Path, cfg: FetchCaptionsConfig) -> int:
    """The common shortcut: webvtt-py captions' text as is (every rolling phrase three times)."""
    vtt = webvtt.from_string(data.decode())
    rows = [
        {
            "start_ms": c.start_time.in_milliseconds(),
            "end_ms": c.end_time.in_milliseconds(),
            "text": c.text.replace("\n", " "),
        }
        for c in vtt.captions
    ]
    pq.write_table(pa.Table.from_pylist(rows), out, compression="zstd")
    return len(rows)


def _rate(
    fn: Callable[[bytes, Path, FetchCaptionsConfig], int], data: bytes, out: Path, min_s: float
) -> tuple[float, int]:
    """Files per CPU-second (one thread, so per core) over at least `min_s` of CPU time."""
    cfg = FetchCaptionsConfig()
    fn(data, out, cfg)  # warm-up: imports, first Parquet writer
    n, rows, started = 0, 0, time.process_time()
    while time.process_time() - started < min_s or n < 2:
        rows = fn(data, out, cfg)
        n += 1
    return n / (time.process_time() - started), rows


def _label(minutes: int) -> str:
    return f"{minutes // 60}-hour auto track" if minutes % 60 == 0 else f"{minutes}-minute auto track"


def run_bench(
    tmp: Path, min_s: float = 3.0, long_minutes: int = 120, log: Callable[[str], None] = print
) -> dict[str, float]:
    """Measure a 6-minute and a long track, our cleaner against the naive read, and print the table."""
    if not 0 < min_s < math.inf:  # a measurement of no CPU time, or one that never ends
        raise ValueError(f"min_s must be a positive number of seconds, got {min_s}")
    results: dict[str, float] = {}
    log(f"{'track':<22} {'path':<7} {'files/s/core':>13} {'clip rows':>10} {'vs naive':>9}")
    for minutes in (6, long_minutes):
        name = _label(minutes)
        data = generated_track(minutes).encode()
        full, clips = _rate(_full, data, tmp / "full.parquet", min_s)
        naive, naive_rows = _rate(_naive, data, tmp / "naive.parquet", min_s)
        results[f"{name} ours"] = full
        results[f"{name} naive"] = naive
        log(f"{name:<22} {'ours':<7} {full:>13.2f} {clips:>10d} {full / naive:>8.2f}x")
        log(f"{'':<22} {'naive':<7} {naive:>13.2f} {naive_rows:>10d} {'1.00x':>9}")
    return results
