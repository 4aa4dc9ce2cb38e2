"""A dataset's shards of another schema version (a root written before the schema changed) are not read, and
every query says so, naming the folder: the views of such a root were empty (the `crawls` view counted no
changes) without a word."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from storage.catalog import query
from storage.schemas import SCHEMAS
from tests.storage.catalog_data import build_root


def test_shards_of_an_older_schema_version_are_named_at_each_query(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = build_root(tmp_path)
    current = SCHEMAS["clips"].version
    # As an older howto left it: the dataset's shards under another version's folder only.
    old = Path(root.path("clips", f"v{current + 7}"))
    shutil.move(root.dataset_dir("clips", current), old)
    for attempt in range(2):  # the catalog's build, then a reader of the catalog as built
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert query("SELECT count(*) AS n FROM clips", root).rows == [(0,)]
        said = [r.getMessage() for r in caplog.records if "are not read" in r.getMessage()]
        assert said == [
            f"clips: 3 shards of schema v{current + 7} in {old} are not read (written by another version of "
            f"howto; this one reads v{current}): run the stage that writes clips again to have them in "
            f"v{current}"
        ], attempt


def test_a_root_of_the_current_versions_only_says_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = build_root(tmp_path)
    with caplog.at_level(logging.WARNING):
        query("SELECT count(*) FROM clips", root)
    assert not [r for r in caplog.records if "are not read" in r.getMessage()]


def test_older_shards_the_current_version_holds_again_are_not_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """After the stage ran again (or a re-crawl re-recorded crawl_changes v1's generations in v2), the old
    folder's shards are in the current version too: the line asked, at every query, to do what was done."""
    root = build_root(tmp_path)
    current = SCHEMAS["clips"].version
    old = Path(root.path("clips", f"v{current + 7}"))
    shutil.copytree(root.dataset_dir("clips", current), old)  # every shard is in both versions
    Path(root.path("catalog.duckdb")).unlink(missing_ok=True)  # built before the old folder was there
    markers = sorted((old / "_markers").glob("*.json"))
    assert len(markers) == 3
    with caplog.at_level(logging.WARNING):
        assert query("SELECT count(*) AS n FROM clips", root).rows[0][0] > 0
    assert not [r for r in caplog.records if "are not read" in r.getMessage()]

    # One shard the current version does not hold (it was never redone) is still named, alone.
    other = tmp_path / "other"
    other.mkdir()
    root = build_root(other)
    old = Path(root.path("clips", f"v{current + 7}"))
    shutil.copytree(root.dataset_dir("clips", current), old)
    shutil.copy(old / "_markers" / markers[0].name, old / "_markers" / "part-00042.json")
    Path(root.path("catalog.duckdb")).unlink(missing_ok=True)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        query("SELECT count(*) AS n FROM clips", root)
    said = [r.getMessage() for r in caplog.records if "are not read" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith(f"clips: 1 shards of schema v{current + 7} in {old} "), said
