"""Untrusted ids and import files: only plain 11-character ids ever pass."""

from __future__ import annotations

import pytest

from storage.layout import DataRoot
from tasks.search.info_store import info_relpath, load_info
from tasks.youtube.ids import InvalidVideoId, check_video_id, id_from_url, is_video_id, parse_import_text


@pytest.mark.parametrize("good", ["dQw4w9WgXcQ", "a-b_c-d_e-f", "QW3-5OuWn4M"])
def test_plain_ids_pass(good: str) -> None:
    assert is_video_id(good) and check_video_id(good) == good


@pytest.mark.parametrize(
    "bad",
    [
        "../x",
        "../../etc/pa",
        "dQw4w9WgXc",
        "dQw4w9WgXcQQ",
        "dQw4w9WgXc/",
        "https://youtu.be/dQw4w9WgXcQ",
        "x" * 2048,
        "",
        None,
        12345678901,
        "dQw4w9WgXc\n",
    ],
)
def test_everything_else_fails(bad: object) -> None:
    assert not is_video_id(bad)
    with pytest.raises(InvalidVideoId):
        check_video_id(bad)


def test_error_message_is_bounded() -> None:
    with pytest.raises(InvalidVideoId) as info:
        check_video_id("y" * 2048)
    assert len(str(info.value)) < 200


def test_bad_ids_never_become_paths(tmp_path) -> None:
    with pytest.raises(InvalidVideoId):
        info_relpath("../../../../tmp/x")
    with pytest.raises(ValueError):
        load_info(DataRoot.from_any(tmp_path), "info/../../secret.info.json")


@pytest.mark.parametrize(
    ("url", "vid"),
    [
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=10s", "dQw4w9WgXcQ"),
        ("https://youtu.be/dQw4w9WgXcQ", "dQw4w9WgXcQ"),
        ("https://www.youtube.com/shorts/dQw4w9WgXcQ", "dQw4w9WgXcQ"),
        ("http://howto100m.inria.fr/dataset/nVbIUDjzWY4.mp4", "nVbIUDjzWY4"),
        ("https://www.youtube.com/watch?v=../../x", None),
        ("https://example.com/", None),
        ("youtu.be/dQw4w9WgXcQ", "dQw4w9WgXcQ"),
        ("www.youtube.com/watch?v=dQw4w9WgXcQ&list=PL1", "dQw4w9WgXcQ"),
        ("m.youtube.com/shorts/dQw4w9WgXcQ", "dQw4w9WgXcQ"),
        ("https://www.youtube.com/live/dQw4w9WgXcQ?si=x", "dQw4w9WgXcQ"),
        ("https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ", "dQw4w9WgXcQ"),
        ("127.0.0.1:8000/watch?v=dQw4w9WgXcQ", "dQw4w9WgXcQ"),
        ("www.youtube.com/playlist?list=PLxxxxxxxxxx", None),
        ("dQw4w9WgXcQ/", None),
        ("not a url", None),
    ],
)
def test_ids_from_urls(url: str, vid: str | None) -> None:
    assert id_from_url(url) == vid


def test_lines_file_keeps_bad_lines_as_errors() -> None:
    text = "# my list\ndQw4w9WgXcQ\n\nhttps://youtu.be/nVbIUDjzWY4\n../etc/passwd\n" + "z" * 2000 + "\n"
    rows = parse_import_text(text)
    assert [r.video_id for r in rows] == ["dQw4w9WgXcQ", "nVbIUDjzWY4", None, None]
    assert rows[2].error and "line 5" in rows[2].error
    assert rows[3].error is not None and len(rows[3].error) < 200


def test_howto100m_csv() -> None:
    text = (
        "video_id,category_1,category_2,rank,task_id\n"
        "nVbIUDjzWY4,Cars & Other Vehicles,Motorcycles,27,52907\n"
        "CTPAZ2euJ2Q,Cars & Other Vehicles,Motorcycles,35,109057\n"
        "bad,Food,Recipes,1,1\n"
    )
    rows = parse_import_text(text)
    assert [(r.video_id, r.rank, r.task_id) for r in rows] == [
        ("nVbIUDjzWY4", 27, "52907"),
        ("CTPAZ2euJ2Q", 35, "109057"),
        (None, 1, "1"),
    ]
    assert rows[2].error
