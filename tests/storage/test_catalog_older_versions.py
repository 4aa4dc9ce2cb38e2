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
