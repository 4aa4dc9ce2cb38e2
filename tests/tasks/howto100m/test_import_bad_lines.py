"""Bad caption lines in the release: each is skipped and reported with its video and position, by a straight
import and by the rerun of a killed one alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storage.layout import DataRoot
from tasks.howto100m.import_stage import import_howto100m
from tests.tasks.howto100m.conftest import import_config
from tests.tasks.howto100m.release_files import (
    VIDEO_B,
    VIDEO_C,
    kill_after_the_first_shard,
    write_release,
)


def test_a_killed_import_rerun_reports_the_same_skipped_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the rerun's summary counted only the shards it wrote itself; the bad lines (and missing
    feature files) of the shards done before the kill were no longer reported anywhere in it."""
    release = write_release(tmp_path / "release")
    captions = json.loads(release.captions.read_text().replace("NaN", "null"))
    captions[VIDEO_B]["end"].append(30.0)  # one more end than starts and texts
    captions[VIDEO_C]["start"] = [None]  # no time
    release.captions.write_text(json.dumps(captions))
    cfg = import_config(release, videos_per_shard=1)
    straight = import_howto100m(cfg, DataRoot.from_any(tmp_path / "straight").url)
    killed = DataRoot.from_any(tmp_path / "killed")
    with monkeypatch.context() as patch:
        kill_after_the_first_shard(patch)
        with pytest.raises(KeyboardInterrupt):
            import_howto100m(cfg, killed.url)
    rerun = import_howto100m(cfg, killed.url)
    assert rerun["shards_cached"] == 1 and straight["shards_cached"] == 0
    assert straight["counts"]["length_mismatch"] == 1 and straight["counts"]["bad_time"] == 1
    assert rerun["counts"] == straight["counts"]
    assert rerun["skipped_examples"] == straight["skipped_examples"]
    assert straight["skipped_examples"]["length_mismatch"] == [
        f"{VIDEO_B}[3:]: start, end and text hold 3, 4 and 3 items"
    ]
