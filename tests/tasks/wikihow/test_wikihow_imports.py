"""Importing task lists: HowTo100M's task_ids.csv keeps every row and character; lines; CSV."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.layout import DataRoot
from storage.shards import list_markers, read_dataset
from tasks.tasks.imports import IMPORT_SHARD_BASE, import_tasks
from tasks.tasks.task_lists import ImportFormatError, parse_csv, parse_howto100m, parse_lines, read_import
from tasks.wikihow.titles import task_id

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "wikihow"
HOWTO100M = FIXTURES / "task_ids_head.csv"


def test_howto100m_keeps_every_row_and_character() -> None:
    raw_lines = HOWTO100M.read_text(encoding="utf-8").split("\n")[:-1]
    tasks = read_import(HOWTO100M, "howto100m")
    assert len(tasks) == len(raw_lines) == 164
    for task, line in zip(tasks, raw_lines, strict=True):
        assert f"{task.source_id}\t{task.title}" == line
    by_id = {t.source_id: t.title for t in tasks}
    assert by_id["69"] == 'Manage the Contact List by Using "Cloud"'
    assert by_id["353"] == 'Make "Plastic" out of Milk'
    assert by_id["106"] == "Type Faster on Your iPhone, iPad, or iPod Touch"
    assert by_id["356"] == "Make a Balloon\u2010Powered Boat"


def test_howto100m_edge_cases() -> None:
    text = '7\tSay "Hi", then "Bye"\r\n8\t  leading spaces kept\n\n9\tTab\tinside\u2028sep\n'
    tasks = parse_howto100m(text)
    assert [(t.source_id, t.title) for t in tasks] == [
        ("7", 'Say "Hi", then "Bye"'),
        ("8", "  leading spaces kept"),
        ("9", "Tab\tinside\u2028sep"),
    ]
    with pytest.raises(ImportFormatError, match="line 2"):
        parse_howto100m("1\tok\nno tab here\n")


@pytest.mark.parametrize(
    "header", ["id\ttitle", "task_id\ttask_name", "Task ID\tTask", "task_id,title,category"]
)
def test_howto100m_header_row_is_not_a_task(tmp_path: Path, header: str) -> None:
    # The published task_ids.csv has no header (its head: tests/fixtures/wikihow/task_ids_head.csv); an
    # edited copy may have gained one. It was imported as a task titled "title" (or refused, comma-separated).
    rows = HOWTO100M.read_text(encoding="utf-8")
    path = tmp_path / "task_ids.csv"
    path.write_text(f"{header}\n{rows}", encoding="utf-8")
    tasks = read_import(path, "howto100m")
    assert tasks == read_import(HOWTO100M, "howto100m")
    summary = import_tasks(path, "howto100m", str(tmp_path / "root"), shard_size=1000)
    assert summary["rows"] == 164
    titles = read_dataset(DataRoot.from_any(str(tmp_path / "root")), "tasks").to_table().column("title")
    assert not {"title", "task_name", "Task"} & set(titles.to_pylist())
    # Only a first row is a header: the same words further down are a task line as written.
    assert parse_howto100m("0\tMake Toast\nid\ttitle\n")[1].title == "title"


def test_lines_and_csv() -> None:
    assert [(t.source_id, t.title) for t in parse_lines("Make Toast\n\n  Grill Fish  \n")] == [
        ("1", "Make Toast"),
        ("3", "Grill Fish"),
    ]
    csv_text = 'id,title,notes\n17,"Make ""Plastic"" out of Milk","a, b"\n18,Grill Fish,\n'
    assert [(t.source_id, t.title) for t in parse_csv(csv_text)] == [
        ("17", 'Make "Plastic" out of Milk'),
        ("18", "Grill Fish"),
    ]
    with pytest.raises(ImportFormatError, match="no 'title' column"):
        parse_csv("name\nx\n")


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("1\tCr\xe8me br\xfbl\xe9e\n".encode("latin-1"))
    with pytest.raises(ImportFormatError, match="not UTF-8"):
        read_import(path, "howto100m")


def test_import_writes_tasks_dataset_and_second_import_does_nothing(tmp_path: Path) -> None:
    first = import_tasks(HOWTO100M, "howto100m", str(tmp_path), shard_size=100)
    assert first["rows"] == 164 and first["shards"] == 2 and first["shards_cached"] == 0
    table = read_dataset(DataRoot.from_any(str(tmp_path)), "tasks").to_table().sort_by("source_id")
    rows = {r["source_id"]: r for r in table.to_pylist()}
    assert len(rows) == 164
    plastic = rows["353"]
    assert plastic["title"] == 'Make "Plastic" out of Milk'
    assert plastic["task_id"] == task_id('Make "Plastic" out of Milk')
    assert plastic["source"] == "import:howto100m" and plastic["crawl_id"] == "crawl-0000"
    assert plastic["keep"] is True and plastic["status"] == "ok"
    assert rows["58"]["title"] == "Be Polite when Texting" and rows["58"]["drop_reason"] == "abstract_verb"
    assert sum(1 for r in rows.values() if r["keep"]) == first["kept"]
    shards = [m.shard for m in list_markers(DataRoot.from_any(str(tmp_path)), "tasks")]
    assert shards == [IMPORT_SHARD_BASE, IMPORT_SHARD_BASE + 1]

    second = import_tasks(HOWTO100M, "howto100m", str(tmp_path), shard_size=100)
    assert second["shards_cached"] == 2


def test_import_drops_later_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_text("Make Pancakes\nMake pancakes\nGrill Fish\n", encoding="utf-8")
    import_tasks(path, "lines", str(tmp_path / "root"))
    rows = read_dataset(DataRoot.from_any(str(tmp_path / "root")), "tasks").to_table().to_pylist()
    by_line = {r["source_id"]: r for r in rows}
    assert by_line["1"]["keep"] is True
    assert by_line["2"]["keep"] is False and by_line["2"]["drop_reason"] == "duplicate"
    assert by_line["1"]["task_id"] == by_line["2"]["task_id"]


def _kept_titles(root: Path) -> list[str]:
    rows = read_dataset(DataRoot.from_any(str(root)), "tasks").to_table().to_pylist()
    return sorted(r["title"] for r in rows if r["keep"])


def test_second_import_appends_and_dedups_against_the_first(tmp_path: Path) -> None:
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("Make Pancakes\nGrill Fish\n", encoding="utf-8")
    second.write_text("grill fish\nBake Bread\n", encoding="utf-8")
    root = tmp_path / "root"
    import_tasks(first, "lines", str(root))
    summary = import_tasks(second, "lines", str(root))
    assert summary["first_shard"] == IMPORT_SHARD_BASE + 1 and summary["drops"] == {"duplicate": 1}
    assert _kept_titles(root) == ["Bake Bread", "Grill Fish", "Make Pancakes"]
    # Importing either file again writes nothing and keeps both lists.
    assert import_tasks(first, "lines", str(root))["shards_cached"] == 1
    assert import_tasks(second, "lines", str(root))["shards_cached"] == 1
    assert _kept_titles(root) == ["Bake Bread", "Grill Fish", "Make Pancakes"]


def test_replace_drops_earlier_imports(tmp_path: Path) -> None:
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("Make Pancakes\n", encoding="utf-8")
    second.write_text("Bake Bread\n", encoding="utf-8")
    root = tmp_path / "root"
    import_tasks(first, "lines", str(root))
    summary = import_tasks(second, "lines", str(root), replace=True)
    assert summary["replaced_shards"] == 1 and summary["first_shard"] == IMPORT_SHARD_BASE
    assert _kept_titles(root) == ["Bake Bread"]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=10**6),
            st.text(st.characters(blacklist_characters="\n\r"), min_size=1).filter(lambda t: t.strip()),
        ),
        max_size=20,
    )
)
def test_howto100m_round_trips_any_title(rows: list[tuple[int, str]]) -> None:
    text = "".join(f"{i}\t{title}\n" for i, title in rows)
    assert [(int(t.source_id), t.title) for t in parse_howto100m(text)] == rows
