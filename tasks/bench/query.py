"""`howto bench query`: synthetic clips metadata at scale and the timing of typical DuckDB queries."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from storage.catalog import query, refresh
from storage.layout import DataRoot
from storage.shards import row_group_rows, write_shard

CATEGORIES = [
    "Food and Entertaining",
    "Home and Garden",
    "Cars & Other Vehicles",
    "Hobbies and Crafts",
    "Health",
    "Pets and Animals",
    "Sports and Fitness",
    "Personal Care and Style",
    "Computers and Electronics",
    "Arts and Entertainment",
    "Education and Communications",
    "Holidays and Traditions",
]
WORDS = (
    "take the wrench and turn bolt slowly now add salt to water stir pan heat oil cut onion slice zucchini "
    "brush paint wall sand wood glue corner tighten screw check tire pump air fold paper press seam sew"
).split()
CLIPS_PER_VIDEO = 110  # HowTo100M's mean
# Written into a root the bench fills, first thing: that root is the bench's and a later bench may refill it.
BENCH_MARKER = ".howto-bench-query.json"


class BenchRootInUse(Exception):
    """The bench was pointed at a data root that holds something else: it would write over real data."""


def claim_bench_root(root: DataRoot) -> None:
    """Take `root` for the bench: a new path, an empty folder or a root an earlier bench filled; anything
    else (a data root with datasets, a user's folder, a file) is refused before a byte is written."""
    fs, path = root.fs, root.url
    if fs.exists(path):
        if not fs.isdir(path):
            raise BenchRootInUse(f"--data-root {path}: exists and is not a folder")
        names = sorted(str(p).rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False))
        if names and BENCH_MARKER not in names:
            raise BenchRootInUse(
                f"--data-root {path}: already holds {', '.join(names[:5])}{', ...' if len(names) > 5 else ''}"
                "; the bench writes synthetic clips over it: give a new or empty folder (or no --data-root)"
            )
    root.makedirs(path)
    with root.open(root.path(BENCH_MARKER), "w") as handle:
        handle.write(json.dumps({"tool": "howto", "bench": "query"}) + "\n")


@dataclass(frozen=True)
class QueryTiming:
    name: str
    sql: str
    median_s: float
    result: str


def synthetic_clips(rows: int, shard_rows: int, seed: int = 0) -> list[pa.Table]:
    """Clips sorted by video_id, ~110 per video, ~4 s and ~4 words each, split into shards."""
    rng = np.random.default_rng(seed)
    n_videos = max(1, rows // CLIPS_PER_VIDEO)
    video_of_row = np.sort(rng.integers(0, n_videos, rows))
    # A fixed phrase book: real caption vocabularies repeat, and it keeps generation fast.
    phrases = pa.array([" ".join(rng.choice(WORDS, size=rng.integers(2, 8))) for _ in range(20_000)])
    phrase_idx = rng.integers(0, len(phrases), rows)
    text = phrases.take(pa.array(phrase_idx))
    n_words = pa.compute.add(pa.compute.count_substring(text, " "), 1).cast(pa.int32())
    task_of_video = rng.integers(0, 23_611, n_videos)
    category_idx = task_of_video % len(CATEGORIES)
    idx_in_video = np.arange(rows) - np.searchsorted(video_of_row, video_of_row)
    start_ms = idx_in_video.astype(np.int64) * 4_000 + rng.integers(0, 500, rows)
    end_ms = start_ms + rng.integers(1_000, 8_000, rows)
    video_ids = np.char.add("v", np.char.zfill(video_of_row.astype(str), 10))
    tables = []
    for lo in range(0, rows, shard_rows):
        hi = min(rows, lo + shard_rows)
        vids = video_ids[lo:hi]
        idx = idx_in_video[lo:hi].astype(np.int32)
        tables.append(
            pa.table(
                {
                    "clip_id": pa.array(
                        np.char.add(np.char.add(vids, "_"), np.char.zfill(idx.astype(str), 4))
                    ),
                    "video_id": pa.array(vids),
                    "task_id": pa.array(np.char.add("t", task_of_video[video_of_row[lo:hi]].astype(str))),
                    "category": pa.array(np.array(CATEGORIES)[category_idx[video_of_row[lo:hi]]]),
                    "idx": pa.array(idx),
                    "start_ms": pa.array(start_ms[lo:hi]),
                    "end_ms": pa.array(end_ms[lo:hi]),
                    "text": text.slice(lo, hi - lo),
                    "text_no_stopwords": pa.nulls(hi - lo, pa.string()),
                    "n_words": n_words.slice(lo, hi - lo),
                    "crawl_id": pa.array(["bench"] * (hi - lo)),
                }
            )
        )
    return tables


def _time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    fn()  # warm the OS page cache and DuckDB's metadata cache, as a user's second query would
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def run_bench(
    root: DataRoot,
    rows: int,
    shard_rows: int = 2_000_000,
    repeats: int = 5,
    log: Callable[[str], None] = print,
) -> list[QueryTiming]:
    """Write the synthetic dataset (sorted by video_id, in row groups of up to 64k rows) and time the three
    queries."""
    claim_bench_root(root)  # never over a real data root's datasets
    t0 = time.perf_counter()
    tables = synthetic_clips(rows, shard_rows)
    for shard, table in enumerate(tables):
        write_shard(
            root, "clips", shard, table, config_hash="bench", code_version="bench", rows_in=table.num_rows
        )
    refresh(root)
    log(
        f"generated {rows:,} clips in {len(tables)} shard(s), row groups of {row_group_rows(tables[0]):,} rows, "
        f"sorted by video_id, in {time.perf_counter() - t0:.1f}s"
    )
    probe_video = tables[len(tables) // 2].column("video_id")[tables[len(tables) // 2].num_rows // 2].as_py()
    queries = [
        (
            "a: clips and hours per category",
            "SELECT category, count(*) AS clips, sum(end_ms - start_ms) / 3.6e6 AS hours "
            "FROM clips GROUP BY category ORDER BY clips DESC",
        ),
        ("b: all clips of one video", f"SELECT * FROM clips WHERE video_id = '{probe_video}' ORDER BY idx"),
        ("c: full-text LIKE count", "SELECT count(*) FROM clips WHERE text LIKE '%wrench%'"),
    ]
    timings = []
    for name, sql in queries:

        def run(sql: str = sql) -> object:
            return query(sql, root)

        median_s, result = _time(run, repeats)
        rows_out = result.rows if hasattr(result, "rows") else []
        summary = f"{len(rows_out)} row(s)" + (f", first={rows_out[0]}" if len(rows_out) == 1 else "")
        timings.append(QueryTiming(name, sql, median_s, summary))
    return timings
