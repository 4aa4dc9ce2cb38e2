"""An export into an earlier one replaces it whole: no file of the earlier selection stays behind, and an
export stopped half-way (Ctrl-C, an error) leaves the earlier export as it was, never a finished-looking mix."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from storage.layout import DataRoot
from tasks.exports import release, webdataset
from tasks.exports.hf import export_hf
from tasks.exports.release import export_release
from tasks.exports.select import ExportFilter
from tasks.exports.staging import recover
from tasks.exports.webdataset import export_webdataset
from tests.tasks.howto100m.release_files import VIDEO_B

DRINKS = ExportFilter(categories=("Food and Entertaining",))  # VIDEO_B only: 3 of the 7 clips
CARS = ExportFilter(categories=("Cars & Other Vehicles",))  # VIDEO_A and VIDEO_C, not the first clips written
Export = Callable[[DataRoot, Path, ExportFilter], dict[str, Any]]
EXPORTS: dict[str, Export] = {
    "webdataset": lambda root, out, filt: export_webdataset(root, out, filt, samples_per_shard=1),
    "howto100m": lambda root, out, filt: export_release(root, out, filt),
    "hf": lambda root, out, filt: export_hf(root, out, filt),
}


def _videos(out: Path, fmt: str) -> set[str]:
    """The video ids an export holds, read as its consumer reads it."""
    if fmt == "webdataset":
        import webdataset as wds

        shards = sorted(str(p) for p in out.glob("*.tar"))
        return {s["json"]["video_id"] for s in wds.WebDataset(shards, shardshuffle=False).decode()}
    if fmt == "howto100m":
        return set(json.loads((out / "caption.json").read_text()))
    from datasets import load_from_disk

    return set(load_from_disk(str(out))["video_id"])


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_a_narrower_webdataset_export_leaves_no_shard_of_the_earlier_one(
    imported: DataRoot, tmp_path: Path
) -> None:
    import webdataset as wds

    out = tmp_path / "wds"
    assert len(export_webdataset(imported, out, ExportFilter(), samples_per_shard=1)["shards"]) == 7
    summary = export_webdataset(imported, out, DRINKS, samples_per_shard=1)
    # What a reader globs is what this export wrote: before, shards 3-6 of the first export stayed and
    # `shard-*.tar` still held the clips of the other categories.
    assert (
        sorted(str(p) for p in out.glob("*.tar"))
        == summary["shards"]
        == [str(out / f"shard-{k:06d}.tar") for k in range(3)]
    )
    samples = list(wds.WebDataset(sorted(str(p) for p in out.glob("*.tar")), shardshuffle=False).decode())
    assert {s["json"]["video_id"] for s in samples} == {VIDEO_B} and len(samples) == 3


def test_a_narrower_release_export_leaves_no_feature_file_of_the_earlier_one(
    imported: DataRoot, tmp_path: Path
) -> None:
    out = tmp_path / "rel"
    export_release(imported, out, ExportFilter())
    export_release(imported, out, DRINKS)
    assert list(json.loads((out / "caption.json").read_text())) == [VIDEO_B]
    for folder in ("features_2d", "features_3d"):
        assert sorted(p.name for p in (out / folder).iterdir()) == [f"{VIDEO_B}.npy"]
    export_release(imported, out, DRINKS, features=False)
    assert not (out / "features_2d").exists() and not (out / "features_3d").exists()


def _interrupt_after(monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    """Ctrl-C in the middle of writing: after the first sample (webdataset), the first .npy (howto100m), or
    while `datasets` saves (hf)."""
    if fmt == "webdataset":
        add = webdataset.TarShards.add
        state = {"calls": 0}

        def add_then_stop(self: webdataset.TarShards, key: str, files: dict[str, bytes]) -> None:
            state["calls"] += 1
            if state["calls"] == 2:
                raise KeyboardInterrupt
            add(self, key, files)

        monkeypatch.setattr(webdataset.TarShards, "add", add_then_stop)
    elif fmt == "howto100m":
        save = release.np.save

        def save_then_stop(path: Path, array: Any) -> None:
            save(path, array)
            raise KeyboardInterrupt

        monkeypatch.setattr(release.np, "save", save_then_stop)
    else:
        import datasets

        def stop(self: Any, path: str, **kwargs: Any) -> None:
            Path(path).mkdir(parents=True)
            (Path(path) / "data-00000-of-00001.arrow").write_bytes(b"half")
            raise KeyboardInterrupt

        monkeypatch.setattr(datasets.Dataset, "save_to_disk", stop)


@pytest.mark.parametrize("fmt", list(EXPORTS))
def test_an_export_stopped_half_way_leaves_the_earlier_one_whole(
    imported: DataRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    out = tmp_path / "out"
    EXPORTS[fmt](imported, out, CARS)
    before = _tree(out)
    with monkeypatch.context() as patch:
        _interrupt_after(patch, fmt)
        with pytest.raises(KeyboardInterrupt):
            EXPORTS[fmt](imported, out, ExportFilter())
    # Before (webdataset, howto100m): the stopped export's first shard, or a closed caption.json of the
    # videos written so far beside the earlier csv, sat in the folder as if finished.
    assert _tree(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # the half-built export is gone
    EXPORTS[fmt](imported, out, ExportFilter())  # and the next one goes through
    assert _tree(out) != before


def test_a_stopped_export_into_a_new_folder_leaves_nothing(
    imported: DataRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _interrupt_after(monkeypatch, "howto100m")
    with pytest.raises(KeyboardInterrupt):
        export_release(imported, tmp_path / "rel", ExportFilter())
    assert list(tmp_path.iterdir()) == []  # no folder that a loader could take for a release


def test_recover_takes_back_only_its_own_folder(tmp_path: Path) -> None:
    """A kill between the swap's two renames leaves the earlier export under its old-name: the next export
    of the same --out puts it back; one of another --out whose name ends the same never takes it."""
    hex_ = "0" * 32
    old = tmp_path / f".tmp-howto100m-old-{hex_}-my-rel"
    old.mkdir()
    (old / "caption.json").write_text("{}")
    half = tmp_path / f".tmp-howto100m-new-{hex_}-my-rel"
    half.mkdir()
    recover(tmp_path / "rel", "howto100m")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([old.name, half.name])
    recover(tmp_path / "my-rel", "howto100m")
    assert [p.name for p in tmp_path.iterdir()] == ["my-rel"]
    assert (tmp_path / "my-rel" / "caption.json").read_text() == "{}"


@pytest.mark.parametrize("fmt", list(EXPORTS))
def test_an_out_that_is_a_link_to_an_earlier_export_stays_a_link(
    imported: DataRoot, tmp_path: Path, fmt: str
) -> None:
    """`--out wds` where wds links to a folder on a big disk: the export replaces the folder the link names."""
    disk, here = tmp_path / "disk", tmp_path / "here"
    here.mkdir()
    EXPORTS[fmt](imported, disk / "export", CARS)
    (here / "export").symlink_to(disk / "export")
    EXPORTS[fmt](imported, here / "export", DRINKS)
    # Before (hf): the link became a folder beside it, and the earlier export stayed in disk/ for good.
    assert (here / "export").is_symlink() and os.readlink(here / "export") == str(disk / "export")
    assert [p.name for p in here.iterdir()] == ["export"] and [p.name for p in disk.iterdir()] == ["export"]
    assert _videos(disk / "export", fmt) == {VIDEO_B}
