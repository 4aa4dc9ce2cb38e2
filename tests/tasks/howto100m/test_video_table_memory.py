"""HowTo100M_v1.csv (1.24M lines) is held column-wise: no Python object per line and column."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from tasks.bench.howto100m import _video_id
from tasks.howto100m.release import VideoTable

CATEGORIES = [
    ("Food and Entertaining", "Recipes"),
    ("Cars & Other Vehicles", "Motorcycles"),
    ("Pets", "Dogs"),
]


def test_the_csv_is_held_without_a_python_string_per_line(tmp_path: Path) -> None:
    """Before: category_1, category_2 and task_id were Python lists, a str object per line each (about 430 MB
    for the real file's 1.24M lines, on top of the table); now codes into their distinct values."""
    n = 30_000
    csv = tmp_path / "HowTo100M_v1.csv"
    with csv.open("w") as handle:
        handle.write("video_id,category_1,category_2,rank,task_id\n")
        for i in range(n):
            cat1, cat2 = CATEGORIES[i % len(CATEGORIES)]
            handle.write(f"{_video_id(i * 7919 + 17)},{cat1},{cat2},{i % 200 + 1},{100000 + i % 2000}\n")
    tracemalloc.start()
    try:
        table = VideoTable.read(csv)
        held, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the video ids as 11-character numpy strings are 44 bytes a line; all the rest must be a few bytes more
    assert held / n < 80, f"{held / n:.0f} bytes per csv line held in Python objects"
    meta = table.meta(table.find(_video_id(7 * 7919 + 17)))
    assert (meta.category_1, meta.category_2, meta.rank, meta.task, meta.path) == (
        "Cars & Other Vehicles", "Motorcycles", 8, "100007", None,
    )  # fmt: skip
