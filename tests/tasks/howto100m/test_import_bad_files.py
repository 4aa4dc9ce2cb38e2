"""A broken release file stops `howto import howto100m` before it writes or removes anything in the data root,
and a retry with the repaired file gives the same rows as a clean import."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import numpy.lib.format as npy_format
import pytest

from storage.layout import DataRoot
from storage.shard_lock import LOCKS_DIR
from storage.shards import list_markers, read_dataset
from tasks.howto100m.caption_json import CaptionFileError
from tasks.howto100m.import_stage import import_howto100m
from tasks.howto100m.release import ReleaseFormatError, load_feature_rows
from tests.tasks.howto100m.conftest import import_config
from tests.tasks.howto100m.release_files import VIDEO_A, VIDEO_B, Release, write_release


def _files(root: Path) -> dict[str, bytes]:
    # The shard locks (storage/shard_lock.py, empty files a run opens) are bookkeeping, not data: left out.
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] != LOCKS_DIR
    }


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "expected {"),
        (b"\x89PNG\r\n\x1a\n\x00\x00garbage", "not UTF-8"),
        (b'[{"start": [0]}]', "expected {"),
        (b'{"' + VIDEO_A.encode() + b'": {"start": [0.5], "text": ["caf\xe9"]}}', "not UTF-8"),
        (b'{"' + VIDEO_A.encode() + b'": {"start": [0.5], ', "character"),
        # a RecursionError's traceback out of json's C decoder, not a line
        (
            b'{"' + VIDEO_A.encode() + b'": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            "character 16: .* nested",
        ),
        # Python's int conversion limit: a ValueError traceback out of json's decoder
        (
            b'{"' + VIDEO_A.encode() + b'": {"start": [1' + b"0" * 5000 + b"]}}",
            r"character 16: .*4300 digits",
        ),
    ],
    ids=["empty", "binary", "list", "latin-1", "truncated", "nested", "digits"],
)
def test_a_broken_caption_file_writes_nothing(
    release: Release, fresh_root: DataRoot, tmp_path: Path, content: bytes, says: str
) -> None:
    bad = tmp_path / "caption.json"
    bad.write_bytes(content)
    with pytest.raises(CaptionFileError, match=says):
        import_howto100m(import_config(release, captions=str(bad)), fresh_root.url)
    assert _files(Path(fresh_root.url)) == {}  # no tasks shard, no plan, no catalog


def test_retry_with_the_repaired_file_equals_a_clean_import(
    release: Release, fresh_root: DataRoot, tmp_path: Path
) -> None:
    bad = tmp_path / "caption.json"
    bad.write_bytes(b"not json at all")
    with pytest.raises(CaptionFileError):
        import_howto100m(import_config(release, captions=str(bad)), fresh_root.url)
    import_howto100m(import_config(release), fresh_root.url)
    tasks = read_dataset(fresh_root, "tasks").to_table()
    assert tasks.num_rows == 2 and all(tasks.column("keep").to_pylist())
    assert len(list_markers(fresh_root, "tasks")) == 1


def test_an_import_that_broke_later_leaves_nothing_and_the_repaired_file_needs_no_replace(
    release: Release, fresh_root: DataRoot, tmp_path: Path
) -> None:
    """A caption file that breaks after its first entry fails while videos stream, after its tasks shard was
    written: that shard and the import's plan are removed again, so the repaired file imports as a clean
    import would (it was refused as "other files" until --replace, and the half import stayed)."""
    good = release.captions.read_bytes()
    cut = tmp_path / "caption.json"
    cut.write_bytes(good[: good.index(b"}") + 2])  # the first entry, then the file ends
    with pytest.raises(CaptionFileError):
        import_howto100m(import_config(release, captions=str(cut)), fresh_root.url)
    assert _files(Path(fresh_root.url)) == {}
    import_howto100m(import_config(release), fresh_root.url)
    tasks = read_dataset(fresh_root, "tasks").to_table()
    assert tasks.num_rows == 2 and all(tasks.column("keep").to_pylist())


def test_replace_with_a_bad_csv_keeps_the_earlier_import(
    release: Release, fresh_root: DataRoot, tmp_path: Path
) -> None:
    import_howto100m(import_config(release), fresh_root.url)
    before = _files(Path(fresh_root.url))
    empty_ids = tmp_path / "task_ids.csv"
    empty_ids.write_text("")
    with pytest.raises(ReleaseFormatError, match="no tasks"):
        import_howto100m(import_config(release, task_ids=str(empty_ids)), fresh_root.url, replace=True)
    assert _files(Path(fresh_root.url)) == before


def test_an_empty_or_cut_features_file_is_a_missing_feature(tmp_path: Path) -> None:
    (tmp_path / f"{VIDEO_A}.npy").write_bytes(b"")
    rows, why = load_feature_rows(str(tmp_path), None, VIDEO_A)
    assert rows is None and why.startswith("unreadable features file (EOFError")
    np.save(tmp_path / f"{VIDEO_A}.npy", np.ones((4, 8), np.float16))
    (tmp_path / f"{VIDEO_A}.npy").write_bytes((tmp_path / f"{VIDEO_A}.npy").read_bytes()[:100])
    rows, why = load_feature_rows(str(tmp_path), None, VIDEO_A)
    assert rows is None and why.startswith("unreadable features file")


def test_a_npy_declaring_more_than_it_holds_is_a_missing_feature_not_an_allocation(
    fresh_root: DataRoot, tmp_path: Path
) -> None:
    """np.load allocates what the header declares before reading: 200 bytes declaring a (10**12, 2048) array
    raised MemoryError (3.6 PiB) out of the whole import, on every rerun."""
    release = write_release(tmp_path / "release")  # its own: the module's release stays whole
    with open(release.features_2d / f"{VIDEO_A}.npy", "wb") as handle:
        npy_format.write_array_header_1_0(
            handle, {"descr": "<f2", "fortran_order": False, "shape": (10**12, 2048)}
        )
        handle.write(b"\0" * 64)
    summary = import_howto100m(import_config(release), fresh_root.url)
    [why] = [w for w in summary["skipped_examples"]["features_2d_missing"] if w.startswith(VIDEO_A)]
    assert "declares float16 (1000000000000, 2048)" in why and "the file holds 64" in why
    assert read_dataset(fresh_root, "clips").count_rows() > 0  # the other videos imported


def _npy_header(version: tuple[int, int], descr: object, shape: tuple[int, ...]) -> bytes:
    """A .npy header of any version, as numpy writes it: 1.0 a 2-byte length and Latin-1, 2.0 a 4-byte length
    and Latin-1, 3.0 a 4-byte length and UTF-8; padded with spaces and a newline to 64 bytes."""
    size, encoding = {(1, 0): ("<H", "latin1"), (2, 0): ("<I", "latin1"), (3, 0): ("<I", "utf8")}[version]
    text = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode(encoding)
    lead = 6 + 2 + struct.calcsize(size)
    text += b" " * (-(lead + len(text) + 1) % 64) + b"\n"
    return npy_format.MAGIC_PREFIX + bytes(version) + struct.pack(size, len(text)) + text


@pytest.mark.parametrize(
    ("version", "descr", "says"),
    [
        ((1, 0), "<f2", "float16"),
        ((2, 0), "<f2", "float16"),
        ((3, 0), "<f2", "float16"),
        ((3, 0), [("\u00fcber", "<f2")], "(1000000000000, 2048)"),  # a UTF-8 field name: 3.0's reason to be
    ],
)
def test_a_npy_of_any_version_declaring_more_than_it_holds_is_read_no_further(
    tmp_path: Path, version: tuple[int, int], descr: object, says: str
) -> None:
    """Each .npy version np.load reads has its header checked against the file's size. Before, a 3.0 header
    went straight to np.load, which allocated the (10**12, 2048) array it declares: a MemoryError out of the
    import, or tens of GB taken for a smaller lie."""
    (tmp_path / f"{VIDEO_A}.npy").write_bytes(_npy_header(version, descr, (10**12, 2048)) + b"\0" * 64)
    rows, why = load_feature_rows(str(tmp_path), None, VIDEO_A)
    assert rows is None and "declares" in why and says in why and "the file holds 64" in why


def test_a_whole_npy_of_each_version_still_loads(tmp_path: Path) -> None:
    data = np.arange(8, dtype=np.float16).reshape(2, 4)
    for version in ((1, 0), (2, 0), (3, 0)):
        header = _npy_header(version, "<f2", (2, 4))
        (tmp_path / f"{VIDEO_A}.npy").write_bytes(header + data.tobytes())
        rows, why = load_feature_rows(str(tmp_path), None, VIDEO_A)
        assert why == "" and rows is not None and np.array_equal(rows, data), version


def test_caption_times_no_int64_holds_are_bad_times_not_a_traceback(
    release: Release, fresh_root: DataRoot, tmp_path: Path
) -> None:
    """1e300 s or 10**30 s made a clip time past int64: an OverflowError out of the shard writer (integers),
    or silently -2**63 ms (all floats). Each such line is skipped as a bad time; its neighbours import."""
    captions = tmp_path / "caption.json"
    captions.write_text(
        f'{{"{VIDEO_A}": {{"start": [1.0, 1e300, 2.0], "end": [2.0, 3.0, 1e300], "text": ["a", "b", "c"]}},'
        f' "{VIDEO_B}": {{"start": [1, {10**30}], "end": [2, {10**30 + 1}], "text": ["d", "e"]}}}}'
    )
    import_howto100m(import_config(release, captions=str(captions)), fresh_root.url)
    clips = read_dataset(fresh_root, "clips").to_table().to_pylist()
    assert sorted((c["video_id"], c["start_ms"], c["end_ms"], c["text"]) for c in clips) == sorted(
        [(VIDEO_A, 1000, 2000, "a"), (VIDEO_B, 1000, 2000, "d")]
    )
    skipped = sum(m.extra.get("bad_time", 0) for m in list_markers(fresh_root, "videos"))
    assert skipped == 3
