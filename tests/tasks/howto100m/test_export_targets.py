"""An export writes only where it may: never the data root, a folder in or above it, a file or a user's
folder; it replaces or writes over only a folder it marked as its own; an empty selection is one line."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from flows.cli import app
from storage.layout import DataRoot
from storage.shards import list_markers, read_dataset, read_shard, write_shard
from tasks.exports.hf import export_hf
from tasks.exports.release import export_release
from tasks.exports.select import ExportFilter, NothingToExport
from tasks.exports.target import MARKER, ExportRefused
from tasks.exports.webdataset import export_webdataset
from tasks.howto100m.import_stage import import_howto100m
from tests.tasks.howto100m.conftest import import_config
from tests.tasks.howto100m.release_files import VIDEO_A, Release

runner = CliRunner()
EXPORTS: dict[str, Callable[[DataRoot, Path], Any]] = {
    "hf": lambda root, out: export_hf(root, out, ExportFilter(), features="none"),
    "webdataset": lambda root, out: export_webdataset(root, out, ExportFilter(), features="none"),
    "howto100m": lambda root, out: export_release(root, out, ExportFilter(), features=False),
}


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("fmt", list(EXPORTS))
def test_no_export_writes_into_the_data_root_or_around_it(imported: DataRoot, fmt: str) -> None:
    root = Path(imported.url)
    before = _tree(root)
    for out, needle in [
        (root, "is the data root"),
        (root / "clips", "is inside the data root"),
        (root / "new" / "export", "is inside the data root"),
        (root.parent, "holds the data root"),
    ]:
        with pytest.raises(ExportRefused, match=needle) as refused:
            EXPORTS[fmt](imported, out)
        assert str(out) in str(refused.value)
    assert _tree(root) == before and not (root / "new").exists()
    assert read_dataset(imported, "clips").count_rows() == 7


@pytest.mark.parametrize("fmt", list(EXPORTS))
def test_a_users_folder_or_file_is_refused_and_kept(imported: DataRoot, tmp_path: Path, fmt: str) -> None:
    folder = tmp_path / "mine"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("keep me")
    (folder / "caption.json").write_text("{}")  # a name an export writes
    (folder / "sub" / "shard-000000.tar").write_bytes(b"mine")
    with pytest.raises(ExportRefused, match=f"{folder}: exists, is not empty and is not an export"):
        EXPORTS[fmt](imported, folder)
    assert _tree(folder) == {"notes.txt": b"keep me", "caption.json": b"{}", "sub/shard-000000.tar": b"mine"}

    plain = tmp_path / "plain.txt"
    plain.write_text("a file")
    with pytest.raises(ExportRefused, match="exists and is not a folder"):
        EXPORTS[fmt](imported, plain)
    assert plain.read_text() == "a file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "plain.txt"]  # no temp folders left


@pytest.mark.parametrize("fmt", list(EXPORTS))
def test_an_empty_folder_or_its_own_export_is_taken(imported: DataRoot, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    EXPORTS[fmt](imported, out)
    assert json.loads((out / MARKER).read_text()) == {"tool": "howto", "format": fmt}
    EXPORTS[fmt](imported, out)  # again: the folder is its own now
    assert json.loads((out / MARKER).read_text())["format"] == fmt
    other = next(f for f in EXPORTS if f != fmt)
    with pytest.raises(ExportRefused, match=f"holds a {fmt} export, not {other}"):
        EXPORTS[other](imported, out)


def test_hf_export_of_no_clips_says_so(imported: DataRoot, tmp_path: Path) -> None:
    with pytest.raises(NothingToExport, match="no clips match") as nothing:
        export_hf(imported, tmp_path / "hf", ExportFilter(split="heldout", heldout_fraction=0.0))
    assert "--split heldout" in str(nothing.value) and "other_split 7" in str(nothing.value)
    assert list(tmp_path.iterdir()) == []  # no half export, no temp folders


def test_cli_refusals_are_one_line_and_exit_2(imported: DataRoot, tmp_path: Path) -> None:
    root = imported.url
    before = _tree(Path(root))
    cases = [
        (["export", "hf", "--out", root], f"error: --out {root}: is the data root"),
        (["export", "webdataset", "--out", f"{root}/clips"], f"error: --out {root}/clips: is inside the data"),
        (["export", "howto100m", "--out", str(tmp_path)], f"error: --out {tmp_path}: exists, is not empty"),
        (["export", "hf", "--out", str(tmp_path / "hf"), "--split", "heldout", "--heldout-fraction", "0"],
         "error: nothing to export: no clips match --keep kept, --split heldout, --category any"),
        (["export", "hf", "--out", str(tmp_path / "hf"), "--category", "Nowhere"],
         "error: --category 'Nowhere': no clips of"),
    ]  # fmt: skip
    (tmp_path / "notes.txt").write_text("keep me")
    for args, start in cases:
        out = runner.invoke(app, [*args, "--data-root", root])
        assert out.exit_code == 2, out.output
        assert out.stderr.startswith(start) and out.stderr.count("\n") == 1, out.stderr
        assert "Traceback" not in out.output
    assert _tree(Path(root)) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("fmt", list(EXPORTS))
def test_the_working_folder_as_out_is_refused_in_one_line(
    imported: DataRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """An export replaces its folder whole: `--out .` (before: a ValueError traceback, "has an empty name")
    and a folder above the working one are refused, and the working folder is left as it was."""
    work = tmp_path / "work" / "here"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    for given, what in ((".", "is the working folder"), ("..", "holds the working folder")):
        out = runner.invoke(app, ["export", fmt, "--out", given, "--data-root", imported.url])
        assert out.exit_code == 2, out.output
        assert out.stderr == f"error: --out {given}: {what}, which an export would replace whole; name a " \
            f"folder to create or replace (e.g. --out {fmt})\n"  # fmt: skip
    assert list(work.iterdir()) == [] and [p.name for p in (tmp_path / "work").iterdir()] == ["here"]
    assert [p.name for p in tmp_path.iterdir()] == ["work"]
    EXPORTS[fmt](imported, Path(fmt))  # a folder named in it is fine
    assert [p.name for p in work.iterdir()] == [fmt]


EVIL_ID = "../../../pwned"
FEATURED_EXPORTS: dict[str, Callable[[DataRoot, Path], Any]] = {
    "hf": lambda root, out: export_hf(root, out, ExportFilter()),
    "webdataset-clips": lambda root, out: export_webdataset(root, out, ExportFilter()),
    "webdataset-videos": lambda root, out: export_webdataset(root, out, ExportFilter(), per="video"),
    "howto100m": lambda root, out: export_release(root, out, ExportFilter()),
}


@pytest.fixture(scope="module")
def crafted(release: Release, tmp_path_factory: pytest.TempPathFactory) -> DataRoot:
    """An imported root whose shards were rewritten to name one video `../../../pwned` (a root from
    someone else: the import itself refuses such an id)."""
    root = DataRoot.from_any(tmp_path_factory.mktemp("crafted") / "root")
    import_howto100m(import_config(release), root.url)
    for dataset in ("videos", "captions", "clips", "frame_features"):
        for marker in list_markers(root, dataset):
            table = read_shard(root, dataset, marker.shard)
            assert table is not None
            for column in {"video_id", "clip_id"} & set(table.schema.names):
                values = [v.replace(VIDEO_A, EVIL_ID) for v in table.column(column).to_pylist()]
                table = table.set_column(table.schema.get_field_index(column), column, pa.array(values))
            write_shard(root, dataset, marker.shard, table, config_hash=marker.config_hash,
                        code_version="test", rows_in=table.num_rows)  # fmt: skip
    return root


@pytest.mark.parametrize("fmt", list(FEATURED_EXPORTS))
def test_a_video_id_that_is_a_path_never_leaves_the_root(crafted: DataRoot, tmp_path: Path, fmt: str) -> None:
    """The release layout wrote `features_2d/../../../pwned.npy`, outside its folder; WebDataset stopped
    half-way with a ValueError traceback. Such a video's clips are held back, by their own reason."""
    out = tmp_path / "a" / "b" / "out"
    summary = FEATURED_EXPORTS[fmt](crafted, out)
    assert summary["held_back"] == {"bad_video_id": 3}  # VIDEO_A's three clips
    outside = [p for p in tmp_path.rglob("*") if out not in (p, *p.parents) and p not in out.parents]
    assert outside == []
    assert not any("pwned" in p.name for p in out.rglob("*"))


@pytest.mark.parametrize(
    ("fmt", "link"),
    [("howto100m", "features_2d"), ("webdataset", ".tmp-shard-000000.tar"), ("hf", "data")],
)
def test_a_symbolic_link_in_an_earlier_export_is_refused_and_never_followed(
    imported: DataRoot, tmp_path: Path, fmt: str, link: str
) -> None:
    """An export writes over its own folder by name: a `features_2d` linked to a folder of the user's made
    the release layout overwrite the .npy files there, a `.tmp-shard-000000.tar` linked to a file made
    WebDataset write its tar into that file."""
    out = tmp_path / "out"
    EXPORTS[fmt](imported, out)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "nVbIUDjzWY4.npy").write_text("mine")
    (victim / "file").write_text("mine")
    target = victim if fmt != "webdataset" else victim / "file"
    if (out / link).is_dir():
        shutil.rmtree(out / link)
    (out / link).symlink_to(target)
    again = {**EXPORTS, "howto100m": lambda root, o: export_release(root, o, ExportFilter())}[fmt]
    refused = ""
    try:
        again(imported, out)
    except ExportRefused as exc:
        refused = str(exc)
    assert _tree(victim) == {"file": b"mine", "nVbIUDjzWY4.npy": b"mine"}
    assert refused.startswith(f"--out {out}: holds a symbolic link ({out / link})"), refused
