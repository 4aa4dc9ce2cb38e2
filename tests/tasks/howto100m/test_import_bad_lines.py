"""Bad caption lines in the release: each is skipped (or repaired) and reported with its video and position,
by a straight import and by the rerun of a killed one alike; none crashes the import or a later stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storage.layout import DataRoot
from storage.shards import read_dataset
from tasks.howto100m.import_stage import import_howto100m
from tasks.train.pooling import build_pairs
from tests.tasks.howto100m.conftest import import_config
from tests.tasks.howto100m.release_files import (
    VIDEO_A,
    VIDEO_B,
    VIDEO_C,
    Release,
    kill_after_the_first_shard,
    write_release,
)


def _clips(root: DataRoot) -> list[tuple[str, int, int, str]]:
    rows = read_dataset(root, "clips").to_table().to_pylist()
    return sorted((c["video_id"], c["start_ms"], c["end_ms"], c["text"]) for c in rows)


def test_lines_that_start_after_they_end_or_before_zero_are_skipped_and_named(
    release: Release, fresh_root: DataRoot, tmp_path: Path
) -> None:
    """Before: both were imported as they were; a clip ending before it starts has a negative duration (in
    hours and clip lengths), and a negative start made the pooling's rows [-2:1] empty: build_pairs (training,
    evaluation) failed with 'zero-size array to reduction operation maximum'."""
    captions = tmp_path / "caption.json"
    captions.write_text(json.dumps({
        VIDEO_A: {"start": [1.0, 5.0, 7.0], "end": [2.0, 4.0, 8.0], "text": ["ok", "backwards", "fine"]},
        VIDEO_B: {"start": [-2.0, 3.0], "end": [1.0, 4.0], "text": ["before zero", "good"]},
    }))  # fmt: skip
    summary = import_howto100m(import_config(release, captions=str(captions)), fresh_root.url)
    assert _clips(fresh_root) == sorted([
        (VIDEO_A, 1000, 2000, "ok"), (VIDEO_A, 7000, 8000, "fine"), (VIDEO_B, 3000, 4000, "good"),
    ])  # fmt: skip
    assert summary["counts"]["start_after_end"] == 1 and summary["counts"]["bad_time"] == 1
    assert summary["skipped_examples"]["file"] == str(captions)
    assert summary["skipped_examples"]["start_after_end"] == [f"{VIDEO_A}[1]: start 5.0, end 4.0"]
    assert summary["skipped_examples"]["bad_time"] == [f"{VIDEO_B}[0]: start -2.0, end 1.0"]
    pairs, _drops = build_pairs(
        read_dataset(fresh_root, "clips").to_table(), read_dataset(fresh_root, "frame_features").to_table()
    )
    assert pairs.num_rows == 3


def test_a_lone_surrogate_escape_is_replaced_not_a_traceback(
    release: Release, fresh_root: DataRoot, tmp_path: Path
) -> None:
    """`\\ud83d` with no low half decodes to a character UTF-8 cannot hold: before, pyarrow raised
    UnicodeEncodeError out of the shard, and every rerun stopped at the same place."""
    captions = tmp_path / "caption.json"
    captions.write_text(
        f'{{"{VIDEO_A}": {{"start": [0.0, 1.0], "end": [1.0, 2.0],'
        ' "text": ["cut \\ud83d here", "smile \\ud83d\\ude00 kept"]}}'
    )
    summary = import_howto100m(import_config(release, captions=str(captions)), fresh_root.url)
    assert _clips(fresh_root) == [
        (VIDEO_A, 0, 1000, "cut \ufffd here"), (VIDEO_A, 1000, 2000, "smile \U0001f600 kept"),
    ]  # fmt: skip
    assert summary["counts"]["unpaired_surrogate_replaced"] == 1
    assert summary["skipped_examples"]["unpaired_surrogate_replaced"] == [f"{VIDEO_A}[0]"]


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
