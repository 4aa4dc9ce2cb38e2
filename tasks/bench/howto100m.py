"""`howto bench import`: a generated release of a given caption.json size, imported; time and peak RSS."""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tasks.exports.target import ExportRefused, check_writable
from tasks.howto100m.import_config import ImportConfig
from tasks.howto100m.import_stage import import_howto100m

# Written into a --workdir the bench takes: a later bench may write over it, nothing else is touched.
BENCH_MARKER = ".howto-bench-import.json"


class BenchWorkdirInUse(Exception):
    """--workdir holds something else (a real release, a user's files) or cannot be a folder."""


def claim_workdir(folder: Path) -> None:
    """Take `folder` for the bench: a new path, an empty folder or one an earlier bench filled; anything
    else (a real HowTo100M release, a user's folder, a file) is refused before a byte is written."""
    if folder.exists() or folder.is_symlink():
        if not folder.is_dir():
            raise BenchWorkdirInUse(f"--workdir {folder}: exists and is not a folder")
        names = sorted(p.name for p in folder.iterdir())
        if names and BENCH_MARKER not in names:
            raise BenchWorkdirInUse(
                f"--workdir {folder}: already holds {', '.join(names[:5])}{', ...' if len(names) > 5 else ''}"
                "; the bench writes a generated release over it: give a new or empty folder (or no --workdir)"
            )
    else:
        try:
            check_writable(folder, "--workdir")
        except ExportRefused as exc:
            raise BenchWorkdirInUse(str(exc)) from None
    folder.mkdir(parents=True, exist_ok=True)
    (folder / BENCH_MARKER).write_text(
        json.dumps({"tool": "howto", "bench": "import"}) + "\n", encoding="utf-8"
    )
    # An earlier bench's imported root goes: a fresh import of this release, not a conflict with the last.
    shutil.rmtree(folder / "root", ignore_errors=True)


_WORDS = ("cut onion add salt stir pan heat oil water bowl mix fold paper glue wood nail screw paint brush "
          "tighten bolt wheel chain sand drill measure").split()  # fmt: skip
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _video_id(n: int) -> str:
    chars = []
    for _ in range(11):
        n, r = divmod(n, 64)
        chars.append(_ALPHABET[r])
    return "".join(chars)


def _entries(rng: random.Random, count: int = 256) -> list[str]:
    """Serialised entries with the paper's shape: ~110 lines of ~4 s and ~4 words (stop words removed)."""
    out = []
    for _ in range(count):
        t, start, end, text = 0.0, [], [], []
        for _ in range(rng.randint(40, 180)):
            start.append(round(t, 2))
            t += rng.uniform(1.5, 6.5)
            end.append(round(t, 2))
            text.append(" ".join(rng.choices(_WORDS, k=rng.randint(1, 7))))
        out.append(json.dumps({"start": start, "end": end, "text": text}))
    return out


def write_bench_release(folder: Path, gb: float, seed: int = 0, n_tasks: int = 1000) -> tuple[int, int]:
    """Write caption.json of about `gb` GB plus a matching csv and task list; returns (videos, bytes)."""
    rng = random.Random(seed)
    entries = _entries(rng)
    target = int(gb * 1e9)
    size, videos = 1, 0
    with open(folder / "caption.json", "w", encoding="utf-8") as caps, \
            open(folder / "HowTo100M_v1.csv", "w", encoding="utf-8") as csv:  # fmt: skip
        caps.write("{")
        csv.write("video_id,category_1,category_2,rank,task_id\n")
        while size < target:
            vid = _video_id(videos * 7919 + 17)
            piece = f'{", " if videos else ""}"{vid}": {entries[videos % len(entries)]}'
            caps.write(piece)
            size += len(piece)
            csv.write(f"{vid},Food and Entertaining,Recipes,{videos % 200 + 1},{videos % n_tasks}\n")
            videos += 1
        caps.write("}")
    with open(folder / "task_ids.csv", "w", encoding="utf-8") as tasks:
        tasks.writelines(f"{i}\tMake Dish Number {i}\n" for i in range(n_tasks))
    return videos, size + 1


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_import_bench(gb: float, workdir: Path | None = None) -> Iterator[str]:
    """Lines to print: what was generated, how long the import took, and the process's peak RSS."""
    if workdir is not None:
        claim_workdir(Path(workdir))
    folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="howto-bench-import-"))
    try:
        started = time.perf_counter()
        videos, size = write_bench_release(folder, gb)
        yield f"generated caption.json: {size / 1e9:.2f} GB, {videos} videos in {time.perf_counter() - started:.1f} s"
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        cfg = ImportConfig(
            csv=str(folder / "HowTo100M_v1.csv"), task_ids=str(folder / "task_ids.csv"),
            captions=str(folder / "caption.json"), videos_per_shard=1000,
        )  # fmt: skip
        started, cpu = time.perf_counter(), _cpu_s()
        summary = import_howto100m(cfg, str(folder / "root"))
        took, cpu = time.perf_counter() - started, _cpu_s() - cpu
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        yield (f"imported: {summary['videos']} videos, {summary['clips']} clips, {summary['shards']} shards "
               f"in {took:.1f} s wall, {cpu:.1f} s CPU ({size / 1e6 / took:.1f} MB/s wall, "
               f"{size / 1e6 / cpu:.1f} MB per CPU-second; wall time counts waits for the disk and other processes)")  # fmt: skip
        yield f"peak RSS: {peak:.0f} MiB (before the import: {rss_before:.0f} MiB; file size: {size / 2**20:.0f} MiB)"
        yield f"cpu count: {os.cpu_count()}"
    finally:
        if workdir is None:
            shutil.rmtree(folder, ignore_errors=True)
