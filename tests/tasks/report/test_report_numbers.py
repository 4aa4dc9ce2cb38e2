"""The report's numbers (tasks/report/numbers.py) against what the shards hold, on real Parquet files."""

from __future__ import annotations

from pathlib import Path

from storage.layout import DataRoot
from tasks.howto100m.import_stage import import_howto100m
from tasks.report.numbers import collect
from tests.tasks.howto100m.conftest import import_config
from tests.tasks.howto100m.release_files import write_release


def test_caption_sources_leave_out_imported_videos_the_caption_file_has_no_entry_for(tmp_path: Path) -> None:
    """The card said all 4 csv videos got their captions from caption.json: the one without an entry there
    (a `no_captions` row, status ok) was counted as captioned. 3 videos have captions."""
    release = write_release(tmp_path / "release")
    root = DataRoot.from_any(tmp_path / "root")
    import_howto100m(import_config(release), root.url)
    numbers = collect(root)
    assert numbers.caption_sources == {"caption.json": 3}
    assert numbers.funnel[3].kept == 3  # the funnel's caption tracks agree
