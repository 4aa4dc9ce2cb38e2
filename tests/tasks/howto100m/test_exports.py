"""Exports of an imported release: the round trip through the release layout, WebDataset and HF loaders."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from storage.layout import DataRoot
from storage.shards import list_markers, read_dataset, read_shard, write_shard
from tasks.exports.hf import export_hf
from tasks.exports.release import export_release
from tasks.exports.select import ExportFilter, NothingToExport, Selection
from tasks.exports.webdataset import export_webdataset
from tasks.howto100m.import_config import ImportConfig
from tasks.howto100m.import_stage import import_howto100m
from tasks.train.pooling import build_pairs
from tasks.train.split import is_heldout
from tests.tasks.howto100m.conftest import import_config
from tests.tasks.howto100m.release_files import (
    VIDEO_A,
    VIDEO_B,
    VIDEO_C,
    VIDEO_D,
    Release,
    write_training_release,
)

DATASETS = {
    "tasks": ["task_id", "source_id"],
    "videos": ["video_id"],
    "captions": ["video_id"],
    "clips": ["clip_id"],
    "frame_features": ["video_id", "model", "idx"],
}


def _sorted(root: DataRoot, dataset: str) -> pa.Table:
    return read_dataset(root, dataset).to_table().sort_by([(k, "ascending") for k in DATASETS[dataset]])


def _pooled(root: DataRoot) -> dict[str, np.ndarray]:
    pairs, _ = build_pairs(
        read_dataset(root, "clips").to_table(), read_dataset(root, "frame_features").to_table()
    )
    return {
        c: np.asarray(v, np.float16)
        for c, v in zip(pairs.column("clip_id").to_pylist(), pairs.column("vector").to_pylist(), strict=True)
    }


def test_round_trip_through_the_release_layout_gives_identical_tables(
    imported: DataRoot, tmp_path: Path
) -> None:
    out = tmp_path / "release"
    summary = export_release(imported, out, ExportFilter(keep="all"))
    assert summary["videos"] == 4 and summary["clips"] == 7 and summary["tasks"] == 2
    assert sorted(p.name for p in out.iterdir()) == [
        ".howto-export.json", "HowTo100M_v1.csv", "caption.json", "features_2d", "features_3d",
        "raw_caption.json", "task_ids.csv",
    ]  # fmt: skip
    captions = json.loads((out / "caption.json").read_text())
    assert captions[VIDEO_A] == {"start": [0.234, 2.3, 6.56], "end": [2.3, 6.9, 10.0],
                                 "text": ["hi harrison kevin", "nan", "set slackline"]}  # fmt: skip
    again = DataRoot.from_any(tmp_path / "again")
    cfg = ImportConfig(
        csv=str(out / "HowTo100M_v1.csv"), task_ids=str(out / "task_ids.csv"), captions=str(out / "caption.json"),
        features_2d=str(out / "features_2d"), features_3d=str(out / "features_3d"), videos_per_shard=2,
    )  # fmt: skip
    import_howto100m(cfg, again.url)
    for dataset in DATASETS:
        assert _sorted(again, dataset).equals(_sorted(imported, dataset)), dataset


def test_rejected_and_filtered_rows_never_leak(imported: DataRoot, tmp_path: Path) -> None:
    out = tmp_path / "drinks"
    summary = export_release(imported, out, ExportFilter(categories=("Food and Entertaining",)))
    assert list(json.loads((out / "caption.json").read_text())) == [VIDEO_B]
    assert (out / "HowTo100M_v1.csv").read_text().splitlines()[1:] == [
        f"{VIDEO_B},Food and Entertaining,Drinks,6,25938"
    ]
    assert (out / "task_ids.csv").read_text() == "25938\tMake a Lemon\u2010Lime Soda, Quickly\n"
    assert sorted(p.stem for p in (out / "features_2d").iterdir()) == [VIDEO_B]
    assert summary["held_back"] == {"other_category": 4}
    kept = export_release(imported, tmp_path / "kept", ExportFilter())
    lines = (tmp_path / "kept" / "HowTo100M_v1.csv").read_text()
    assert kept["videos"] == 3 and VIDEO_D not in lines  # D has no captions: dropped, not exported


def test_webdataset_per_clip_loads_with_the_webdataset_library(imported: DataRoot, tmp_path: Path) -> None:
    import webdataset as wds

    summary = export_webdataset(imported, tmp_path / "wds", ExportFilter(), samples_per_shard=3)
    assert summary["samples"] == 7 and len(summary["shards"]) == 3
    samples = list(wds.WebDataset(summary["shards"], shardshuffle=False).decode())
    assert [s["__key__"] for s in samples] == sorted(s["__key__"] for s in samples)
    assert len(samples) == 7
    pooled = _pooled(imported)
    for sample in samples:
        caption = sample["json"]
        assert caption["clip_id"] == sample["__key__"] and caption["end_ms"] > caption["start_ms"]
        assert sample["npy"].shape == (4096,) and sample["npy"].dtype == np.float16
        assert np.array_equal(sample["npy"], pooled[caption["clip_id"]])
    assert {s["json"]["text"] for s in samples if s["json"]["video_id"] == VIDEO_A} == {
        "hi harrison kevin", "nan", "set slackline"}  # fmt: skip


def test_pooled_vectors_are_float16_rows_of_one_array_equal_to_the_reference(imported: DataRoot) -> None:
    # An export holds one clips shard's pooled vectors at a time: as rows of one float16 array they take
    # 8 KB a clip, where Python lists of 4096 float objects took about 240 KB.
    selection = Selection(imported, ExportFilter())
    pooled = _pooled(imported)
    seen = 0
    for part in selection.shards():
        vectors = selection.pooled_vectors(part, Counter())
        assert vectors is not None
        assert all(
            type(v) is np.ndarray and v.dtype == np.float16 and v.shape == (4096,) for v in vectors.values()
        )
        assert len({id(v.base) for v in vectors.values()}) == 1  # views of one array, no copy a clip
        for clip_id, vector in vectors.items():
            assert np.array_equal(vector, pooled[clip_id])
        seen += len(vectors)
    assert seen == len(pooled) == 7


def test_webdataset_per_video_and_split_filters(imported: DataRoot, tmp_path: Path) -> None:
    import webdataset as wds

    summary = export_webdataset(imported, tmp_path / "videos", ExportFilter(), per="video")
    samples = {s["__key__"]: s for s in wds.WebDataset(summary["shards"], shardshuffle=False).decode()}
    assert sorted(samples) == sorted([VIDEO_A, VIDEO_B, VIDEO_C])
    assert samples[VIDEO_A]["resnet152.npy"].shape == (10, 2048)
    assert samples[VIDEO_A]["resnext101.npy"].shape == (7, 2048)
    assert [c["idx"] for c in samples[VIDEO_A]["json"]["clips"]] == [0, 1, 2]
    for split in ("train", "heldout"):
        expected = {v for v in (VIDEO_A, VIDEO_B, VIDEO_C) if is_heldout(v, 0.5) == (split == "heldout")}
        filt = ExportFilter(split=split, heldout_fraction=0.5)
        if not expected:  # a split no video falls in is refused, before its folder is made
            with pytest.raises(NothingToExport, match="other_split"):
                export_webdataset(imported, tmp_path / split, filt, per="video", features="none")
            assert not (tmp_path / split).exists()
            continue
        part = export_webdataset(imported, tmp_path / split, filt, per="video", features="none")
        keys = {s["__key__"] for s in wds.WebDataset(part["shards"], shardshuffle=False).decode()}
        assert keys == expected


def test_hf_dataset_loads_from_disk_with_features_and_a_card(imported: DataRoot, tmp_path: Path) -> None:
    from datasets import List, Value, load_from_disk

    summary = export_hf(imported, tmp_path / "hf", ExportFilter(categories=("Cars & Other Vehicles",)))
    assert summary["rows"] == 4 and summary["held_back"] == {"other_category": 3}
    ds = load_from_disk(str(tmp_path / "hf"))
    assert ds.num_rows == 4
    assert ds.features["video"] == List(Value("float16"), length=4096)
    assert ds.features["start_ms"] == Value("int64") and ds.features["text"] == Value("string")
    pooled = _pooled(imported)
    for row in ds.with_format("numpy"):
        assert np.array_equal(row["video"].astype(np.float16), pooled[str(row["clip_id"])])
    assert {str(v) for v in ds["video_id"]} == {VIDEO_A, VIDEO_C}
    card = (tmp_path / "hf" / "README.md").read_text()
    assert card.startswith("---\n") and "dataset_info:" in card and "push_to_hub" in card
    assert "categories: Cars &amp; Other Vehicles" in card  # Markdown text: & as an entity


def test_hf_export_of_features_of_another_width(tmp_path: Path) -> None:
    """A release imported with its own feature files (64-d here; CLIP's would be 512) pools to vectors of
    another width than 4096: the HF export failed inside `datasets` with a traceback ("Couldn't cast
    array of type list<item: halffloat> to List(Value('float16'), length=4096)")."""
    from datasets import List, Value, load_from_disk

    root = DataRoot.from_any(tmp_path / "root")
    release = write_training_release(tmp_path / "release", n_videos=4, clips=3)
    import_howto100m(import_config(release), root.url)
    summary = export_hf(root, tmp_path / "hf", ExportFilter())
    assert summary["rows"] == 12 and summary["held_back"] == {}
    ds = load_from_disk(str(tmp_path / "hf"))
    assert ds.features["video"] == List(Value("float16"), length=128)  # 64-d 2D then 64-d 3D
    pooled = _pooled(root)
    for row in ds.with_format("numpy"):
        assert np.array_equal(row["video"].astype(np.float16), pooled[str(row["clip_id"])])
    assert "| video | float16[128] |" in (tmp_path / "hf" / "README.md").read_text()
    # A root of mixed widths (the second shard's features rewritten 32-d wide): those clips held back.
    last = list_markers(root, "frame_features")[-1]
    table = read_shard(root, "frame_features", last.shard)
    assert table is not None
    field = table.schema.get_field_index("vector")
    narrow = pa.array([v[:32] for v in table.column("vector").to_pylist()], table.schema.field("vector").type)
    table = table.set_column(field, "vector", narrow)
    write_shard(root, "frame_features", last.shard, table, config_hash=last.config_hash,
                code_version="test", rows_in=table.num_rows)  # fmt: skip
    summary = export_hf(root, tmp_path / "hf-mixed", ExportFilter())
    assert summary["rows"] == 6 and summary["held_back"] == {"other_video_width": 6}


# An export that stops while `datasets` saves, with its cache and half its output on disk, until killed.
STUCK_HF_EXPORT = """
import sys, time
from pathlib import Path
import datasets
from storage.layout import DataRoot
from tasks.exports.hf import export_hf
from tasks.exports.select import ExportFilter

def stuck(self, path, **kwargs):
    Path(path).mkdir(parents=True)
    (Path(path) / "data-00000-of-00001.arrow").write_bytes(b"half")
    print("saving", flush=True)
    time.sleep(120)

datasets.Dataset.save_to_disk = stuck
export_hf(DataRoot.from_any(sys.argv[1]), Path(sys.argv[2]), ExportFilter())
"""


def test_a_killed_hf_export_keeps_the_previous_one_and_the_next_cleans_up(
    imported: DataRoot, tmp_path: Path
) -> None:
    from datasets import load_from_disk

    out = tmp_path / "hf"
    export_hf(imported, out, ExportFilter(categories=("Cars & Other Vehicles",)))
    proc = subprocess.Popen(
        [sys.executable, "-c", STUCK_HF_EXPORT, imported.url, str(out)],
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "saving"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-"))
    assert any(n.startswith(".tmp-hf-cache-") for n in leftovers) and any("hf-new" in n for n in leftovers)
    assert load_from_disk(str(out)).num_rows == 4  # the previous export, whole

    summary = export_hf(imported, out, ExportFilter())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []
    assert load_from_disk(str(out)).num_rows == summary["rows"] > 4
    assert (out / "README.md").exists()


def test_an_empty_root_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    """As the HF export does: an export of no clips is an error (exit 2 from the CLI), not empty files."""
    root = DataRoot.from_any(tmp_path / "empty")
    root.makedirs(root.url)
    with pytest.raises(NothingToExport):
        export_webdataset(root, tmp_path / "out", ExportFilter())
    with pytest.raises(NothingToExport):
        export_release(root, tmp_path / "release", ExportFilter())
    assert not (tmp_path / "out").exists() and not (tmp_path / "release").exists()


def _mark_random_weights(root: DataRoot, video_id: str) -> None:
    """Rewrite the frame_features shards as if `video_id` had been extracted with random weights."""
    for marker in list_markers(root, "frame_features"):
        table = read_shard(root, "frame_features", marker.shard)
        assert table is not None
        flag = pc.or_(table.column("random_weights"), pc.equal(table.column("video_id"), video_id))
        table = table.set_column(table.schema.get_field_index("random_weights"), "random_weights", flag)
        write_shard(root, "frame_features", marker.shard, table, config_hash=marker.config_hash,
                    code_version="test", rows_in=table.num_rows)  # fmt: skip


def test_exports_name_the_videos_whose_features_come_from_random_weights(
    release: Release, tmp_path: Path
) -> None:
    root = DataRoot.from_any(tmp_path / "root")
    import_howto100m(import_config(release), root.url)
    # The release's features are pretrained ones: nothing to warn about.
    assert export_hf(root, tmp_path / "hf-real", ExportFilter())["random_weight_videos"] == 0
    assert "WARNING" not in (tmp_path / "hf-real" / "README.md").read_text()
    _mark_random_weights(root, VIDEO_A)
    summary = export_hf(root, tmp_path / "hf", ExportFilter())
    assert summary["random_weight_videos"] == 1 and "random_weight_videos" not in summary["held_back"]
    card = (tmp_path / "hf" / "README.md").read_text()
    assert "**WARNING: the video vectors of 1 video(s) come from random-weight CNNs" in card
    assert export_webdataset(root, tmp_path / "wds-clips", ExportFilter())["random_weight_videos"] == 1
    assert (
        export_webdataset(root, tmp_path / "wds-videos", ExportFilter(), per="video")["random_weight_videos"]
        == 1
    )
    assert export_release(root, tmp_path / "rel", ExportFilter())["random_weight_videos"] == 1
    # Without features nothing random leaves the root.
    bare = export_webdataset(root, tmp_path / "wds-bare", ExportFilter(), per="video", features="none")
    assert bare["random_weight_videos"] == 0
    # The command line says it on stderr, beside the JSON summary.
    out = subprocess.run(
        [str(Path(sys.executable).parent / "howto"), "export", "webdataset", "--out", str(tmp_path / "cli"),
         "--data-root", root.url], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["random_weight_videos"] == 1
    assert "warning: the features of 1 exported video(s) come from random weights" in out.stderr


def test_the_release_summary_counts_exported_videos_without_feature_files(
    release: Release, tmp_path: Path
) -> None:
    """The reference loader np.loads the features of every video it is given: a caption.json video with no
    .npy stops it, so the summary says how many there are (before: only `feature_files`, to work it out)."""
    root = DataRoot.from_any(tmp_path / "root")
    import_howto100m(import_config(release), root.url)
    for marker in list_markers(root, "frame_features"):
        table = read_shard(root, "frame_features", marker.shard)
        assert table is not None
        table = table.filter(pc.not_equal(table.column("video_id"), VIDEO_C))
        write_shard(root, "frame_features", marker.shard, table, config_hash=marker.config_hash,
                    code_version="test", rows_in=table.num_rows)  # fmt: skip
    out = tmp_path / "rel"
    summary = export_release(root, out, ExportFilter())
    assert summary["videos_with_captions"] == 3 and summary["videos_without_features"] == 1
    assert summary["feature_files"] == 4 and not (out / "features_2d" / f"{VIDEO_C}.npy").exists()
    assert VIDEO_C in json.loads((out / "caption.json").read_text())
    assert "videos_without_features" not in export_release(root, out, ExportFilter(), features=False)


def test_random_weight_count_leaves_out_videos_read_but_not_exported(
    release: Release, tmp_path: Path
) -> None:
    # A random-weight video missing its 3D rows has no features to export: its clips are held back
    # (`no_features`) and no feature file of it is written, so nothing random of it leaves the root. It was
    # counted all the same, because its rows had been read.
    root = DataRoot.from_any(tmp_path / "root")
    import_howto100m(import_config(release), root.url)
    _mark_random_weights(root, VIDEO_A)
    for marker in list_markers(root, "frame_features"):
        table = read_shard(root, "frame_features", marker.shard)
        assert table is not None
        gone = pc.and_(
            pc.equal(table.column("video_id"), VIDEO_A), pc.equal(table.column("model"), "resnext101")
        )
        table = table.filter(pc.invert(gone))
        write_shard(root, "frame_features", marker.shard, table, config_hash=marker.config_hash,
                    code_version="test", rows_in=table.num_rows)  # fmt: skip
    hf = export_hf(root, tmp_path / "hf", ExportFilter())
    assert hf["held_back"].get("no_features") and hf["random_weight_videos"] == 0
    assert "WARNING" not in (tmp_path / "hf" / "README.md").read_text()
    assert export_webdataset(root, tmp_path / "wds-clips", ExportFilter())["random_weight_videos"] == 0
    wds = export_webdataset(root, tmp_path / "wds-videos", ExportFilter(), per="video")
    assert wds["held_back"].get("no_features") and wds["random_weight_videos"] == 0
    rel = export_release(root, tmp_path / "rel", ExportFilter())
    assert rel["videos_without_features"] == 1 and rel["random_weight_videos"] == 0
    assert not (tmp_path / "rel" / "features_2d" / f"{VIDEO_A}.npy").exists()
    # A random-weight video whose features are exported is still counted.
    _mark_random_weights(root, VIDEO_B)
    assert export_hf(root, tmp_path / "hf2", ExportFilter())["random_weight_videos"] == 1
    assert (
        export_webdataset(root, tmp_path / "wds2", ExportFilter(), per="video")["random_weight_videos"] == 1
    )
    assert export_release(root, tmp_path / "rel2", ExportFilter())["random_weight_videos"] == 1
