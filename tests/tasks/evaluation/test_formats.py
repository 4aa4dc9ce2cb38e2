"""Benchmark files: real excerpts load unchanged; truncated or wrong-format files fail in one line."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from tasks.evaluation import formats
from tasks.evaluation.formats import BenchmarkFileError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "benchmarks"


def test_real_youcook2_annotations_load() -> None:
    path = FIXTURES / "youcook2" / "youcookii_annotations_trainval.json"
    val = formats.read_youcook2(path, "validation")
    assert len(val) == 13 and {s.video_id for s in val} == {"9GX8f5EwwE4"}
    assert (val[0].start_s, val[0].end_s, val[0].sentence) == (25.0, 37.0, "cut the onion in half and dice")
    train = formats.read_youcook2(path, "training")
    assert [s.sentence for s in train][-1] == "cut the sandwich in half diagonally"


def test_real_msrvtt_csv_loads_and_the_comma_form_too() -> None:
    real = FIXTURES / "msrvtt" / "MSRVTT_JSFUSION_test.csv"  # ';' and CRLF, as that copy is
    queries = formats.read_msrvtt_csv(real)
    assert len(queries) == 20
    assert (queries[0].key, queries[0].video_id, queries[0].sentence) == (
        "ret0", "video9770", "a person is connecting something to system",
    )  # fmt: skip
    assert all("\r" not in q.sentence for q in queries)
    # The JSFusion original's comma form, as MIL-NCE ships it: the same 20 queries.
    assert formats.read_msrvtt_csv(FIXTURES / "msrvtt" / "mil-nce" / "msrvtt_test.csv") == queries


def test_real_crosstask_cards_and_annotation_load() -> None:
    cards = formats.read_task_cards(FIXTURES / "crosstask" / "tasks_primary.txt")
    assert list(cards) == ["23521", "59684"]
    assert cards["23521"].title == "Make Jello Shots" and len(cards["23521"].steps) == 6
    assert cards["59684"].steps[-1] == "attach shelve"
    rows = formats.read_step_annotation(FIXTURES / "crosstask" / "annotations" / "113766__uAZw6L_R5g.csv", 10)
    assert rows[0] == (1, 33.54, 39.94) and rows[-1] == (10, 96.31, 100.67) and len(rows) == 6


def _one_line(exc: pytest.ExceptionInfo[BenchmarkFileError], path: Path) -> str:
    message = str(exc.value)
    assert "\n" not in message and message.startswith(str(path)), message
    return message


def test_truncated_youcook2_json(tmp_path: Path) -> None:
    path = tmp_path / "youcookii_annotations_trainval.json"
    full = (FIXTURES / "youcook2" / "youcookii_annotations_trainval.json").read_text()
    path.write_text(full[: len(full) // 2])
    with pytest.raises(BenchmarkFileError) as exc:
        formats.read_youcook2(path)
    assert "not valid JSON" in _one_line(exc, path)


@pytest.mark.parametrize(
    "content, problem",
    [
        ('[{"id": 1}]', "database"),
        ('{"database": {"v1": {"subset": "validation"}}}', "annotations"),
        ('{"database": {"v1": {"subset": "validation", "annotations": [{"segment": [3]}]}}}', "segment"),
    ],
)
def test_wrong_format_youcook2_json(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "a.json"
    path.write_text(content)
    with pytest.raises(BenchmarkFileError) as exc:
        formats.read_youcook2(path)
    assert problem in _one_line(exc, path)


def test_wrong_format_msrvtt_csv(tmp_path: Path) -> None:
    path = tmp_path / "MSRVTT_JSFUSION_test.csv"
    path.write_text("video,caption\nvideo1,a cat\n")
    with pytest.raises(BenchmarkFileError) as exc:
        formats.read_msrvtt_csv(path)
    assert "video_id" in _one_line(exc, path)
    path.write_text("key,vid_key,video_id,sentence\nret0,msr1,video1\n")  # a row cut short
    with pytest.raises(BenchmarkFileError) as exc:
        formats.read_msrvtt_csv(path)
    assert "line 2" in _one_line(exc, path)


def test_deep_json_and_a_huge_csv_field_are_one_line_not_a_traceback(tmp_path: Path) -> None:
    """json's RecursionError and the csv module's field limit (_csv.Error) came out as tracebacks."""
    deep = tmp_path / "youcookii_annotations_trainval.json"
    deep.write_text('{"database": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(BenchmarkFileError) as exc:
        formats.read_youcook2(deep)
    assert "nested too deeply" in _one_line(exc, deep)
    deep.write_text('{"database": {"v": {"subset": "validation", "x": 1' + "0" * 5000 + "}}}")
    with pytest.raises(BenchmarkFileError) as exc:
        formats.read_youcook2(deep)
    assert "4300 digits" in _one_line(exc, deep)
    wide = tmp_path / "MSRVTT_JSFUSION_test.csv"
    wide.write_text('key,vid_key,video_id,sentence\nret0,msr1,video1,"' + "a" * 200_000 + '"\n')
    with pytest.raises(BenchmarkFileError) as exc:
        formats.read_msrvtt_csv(wide)
    assert "field larger than field limit" in _one_line(exc, wide)


def test_truncated_and_wrong_crosstask_files(tmp_path: Path) -> None:
    cards = tmp_path / "tasks_primary.txt"
    text = (FIXTURES / "crosstask" / "tasks_primary.txt").read_text()
    cards.write_text(text[: text.index("5\ncut shelve")])  # the second card loses its last lines
    with pytest.raises(BenchmarkFileError) as exc:
        formats.read_task_cards(cards)
    assert "59684" in _one_line(exc, cards)
    cards.write_text(text.replace("\n6\n", "\n7\n"))
    with pytest.raises(BenchmarkFileError) as exc:
        formats.read_task_cards(cards)
    assert "6 steps listed, 7 announced" in _one_line(exc, cards)
    videos = tmp_path / "videos.csv"
    videos.write_text("23521,abc\n")
    with pytest.raises(BenchmarkFileError) as exc:
        formats.read_task_videos(videos)
    _one_line(exc, videos)
    ann = tmp_path / "23521_abc.csv"
    ann.write_text("1,3.0,5.0\n9,6.0,7.0\n")
    with pytest.raises(BenchmarkFileError) as exc:
        formats.read_step_annotation(ann, 6)
    assert "line 2" in _one_line(exc, ann)


def test_missing_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "tasks_primary.txt"
    with pytest.raises(BenchmarkFileError) as exc:
        formats.read_task_cards(path)
    assert "no such file" in _one_line(exc, path)


def test_youcook_pkl_in_the_release_format(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    items = [
        {"id": f"v{i}", "2d": rng.random(2048), "3d": rng.random(2048), "caption": f"step {i}"}
        for i in range(3)
    ]
    path = tmp_path / "youcook_val.pkl"
    path.write_bytes(pickle.dumps(items))
    loaded = formats.read_youcook_pkl(path)
    assert loaded.ids == ["v0", "v1", "v2"] and loaded.feat_2d.shape == (3, 2048)
    path.write_bytes(pickle.dumps(items)[:-40])  # truncated
    with pytest.raises(BenchmarkFileError) as exc:
        formats.read_youcook_pkl(path)
    _one_line(exc, path)
    path.write_bytes(pickle.dumps({"not": "a list"}))
    with pytest.raises(BenchmarkFileError) as exc:
        formats.read_youcook_pkl(path)
    _one_line(exc, path)


class _Evil:
    def __reduce__(self) -> tuple:
        return (print, ("never runs",))


def test_youcook_pkl_refuses_anything_but_arrays(tmp_path: Path) -> None:
    path = tmp_path / "youcook_val.pkl"
    path.write_bytes(pickle.dumps([{"id": "v", "2d": _Evil(), "3d": 0, "caption": ""}]))
    with pytest.raises(BenchmarkFileError) as exc:
        formats.read_youcook_pkl(path)
    assert "builtins.print" in _one_line(exc, path)


def test_msrvtt_pth_in_the_release_format(tmp_path: Path) -> None:
    csv = FIXTURES / "msrvtt" / "MSRVTT_JSFUSION_test.csv"
    queries = formats.read_msrvtt_csv(csv)
    pth = tmp_path / "MSRVTT_JSFUSION_test.pth"
    torch.save({k: {q.video_id: torch.rand(2048).half() for q in queries} for k in ("2d", "3d")}, pth)
    items = formats.read_msrvtt_features(pth, queries)
    assert items.feat_3d.shape == (20, 2048) and items.captions[1] == "a little girl does gymnastics"
    torch.save({"2d": {}}, pth)
    with pytest.raises(BenchmarkFileError) as exc:
        formats.read_msrvtt_features(pth, queries)
    _one_line(exc, pth)
    pth.write_bytes(b"not a torch file")
    with pytest.raises(BenchmarkFileError) as exc:
        formats.read_msrvtt_features(pth, queries)
    _one_line(exc, pth)


# The real excerpts, each with the reader that takes it (a videos.csv row in the release's task,vid,url
# form for the annotated video above: no real videos.csv excerpt is public).
_REAL_TEXT_FILES = {
    "tasks_primary": (FIXTURES / "crosstask" / "tasks_primary.txt", formats.read_task_cards),
    "annotation": (
        FIXTURES / "crosstask" / "annotations" / "113766__uAZw6L_R5g.csv",
        lambda p: formats.read_step_annotation(p, 10),
    ),
    "msrvtt": (FIXTURES / "msrvtt" / "MSRVTT_JSFUSION_test.csv", formats.read_msrvtt_csv),
    "youcook2": (
        FIXTURES / "youcook2" / "youcookii_annotations_trainval.json",
        lambda p: formats.read_youcook2(p, "validation"),
    ),
}


@pytest.mark.parametrize("name", sorted(_REAL_TEXT_FILES))
@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_real_files_saved_with_a_byte_order_mark_read_the_same(
    tmp_path: Path, name: str, line_end: str
) -> None:
    """Windows tools save UTF-8 with a BOM: the task card's first id became '\\ufeff23521' (the task
    matched no video and dropped out of the average unseen); the annotation and JSON were refused."""
    real, read = _REAL_TEXT_FILES[name]
    copy = tmp_path / real.name
    copy.write_bytes(
        b"\xef\xbb\xbf" + real.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", line_end.encode())
    )
    assert read(copy) == read(real)


def test_videos_csv_with_a_byte_order_mark_keeps_its_first_task(tmp_path: Path) -> None:
    path = tmp_path / "videos.csv"
    rows = "113766,_uAZw6L_R5g,https://www.youtube.com/watch?v=_uAZw6L_R5g\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + rows.encode())
    assert formats.read_task_videos(path) == {"113766": ["_uAZw6L_R5g"]}
