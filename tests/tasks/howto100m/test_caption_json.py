"""The streaming caption.json reader: same entries as json.load at any chunk size, one-line errors."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.howto100m.caption_json import CaptionFileError, iter_entries, open_captions
from tasks.howto100m.release import VideoTable

FIXTURES = Path(__file__).parents[2] / "fixtures" / "howto100m"

texts = st.one_of(st.text(max_size=12), st.floats(allow_nan=True), st.integers(), st.none())
entries = st.fixed_dictionaries(
    {
        "start": st.lists(st.floats(0, 1e4), max_size=5),
        "end": st.lists(st.floats(0, 1e4), max_size=5),
        "text": st.lists(texts, max_size=5),
    }  # fmt: skip
)


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b and type(a) is type(b)


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(st.text(min_size=1, max_size=11), entries, max_size=6), st.integers(1, 64), st.booleans()
)
def test_stream_equals_json_load_at_any_chunk_size(data: dict, chunk: int, indent: bool) -> None:
    text = json.dumps(data, indent=1 if indent else None, ensure_ascii=False)
    got = list(iter_entries(io.StringIO(text), chunk))
    assert [k for k, _ in got] == list(data)
    assert all(_same(v, data[k]) for k, v in got)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": {"start": [1]}', "expected , or }, got end of file"),
        ('{"a" {"start": [1]}}', "character 5: expected :"),
        ("[1, 2]", "character 0: expected {"),
        ('{"a": {"text": [tru]}}', "Expecting value"),
        ('{"a": {}} {"b": {}}', "data after the top-level object"),
        ("", "expected {, got end of file"),
    ],
)
def test_broken_files_fail_with_the_position(text: str, message: str) -> None:
    with pytest.raises(CaptionFileError, match=message):
        list(iter_entries(io.StringIO(text), 3))


def test_real_caption_excerpt_streams_with_its_float_artefacts() -> None:
    with open_captions(str(FIXTURES / "caption_excerpt.json")) as handle:
        got = dict(iter_entries(handle, 50))
    assert list(got) == ["jMefeL-qX-M", "PLdcP55e2bY", "Ohv6R87Q-gk", "NkolT_879ZA", "T6inDvsbLw4"]
    assert got["NkolT_879ZA"]["end"][1] == 6.5600000000000005
    assert got["jMefeL-qX-M"]["text"] == ["hi harrison kevin", "set", "slackline", "set"]


def test_real_v1_excerpt_reads_categories_ranks_and_task_ids() -> None:
    table = VideoTable.read(FIXTURES / "HowTo100M_v1_excerpt.csv")
    assert len(table) == 7 and table.bad_lines == 0
    meta = table.meta(table.find("gkjnR3-ZVts"))
    assert (meta.category_1, meta.category_2, meta.rank, meta.task) == (
        "Food and Entertaining",
        "Drinks",
        6,
        "25938",
    )
    assert table.meta(table.find("_97kyZVWVG0")).category_1 == "Hobbies and Crafts"
    assert [str(table.ids[r]) for r in table.unseen()][:3] == ["nVbIUDjzWY4", "CTPAZ2euJ2Q", "rwmt7Cbuvfs"]
    assert table.first_categories()["52907"] == ("Cars & Other Vehicles", "Motorcycles")
